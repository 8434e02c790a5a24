"""Sandbox configuration: virtual hosts per region, token lifetime, pipeline and webhook settings.

Only api.basware.com, test-api.basware.com and test-api.us.basware.com are seen in public
material; every other host name below follows the pattern and is an unverified guess, so the
whole table is configuration.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from mlconnector.saved_state import SavedSecretStr


class Region(StrEnum):
    EU = "EU"
    US = "US"
    AU = "AU"
    CA = "CA"


class Environment(StrEnum):
    PRODUCTION = "production"
    TEST = "test"


class VirtualHost(BaseModel):
    """One Basware API host: its own token issuer, credentials and data."""

    model_config = ConfigDict(frozen=True)

    name: str
    region: Region
    environment: Environment
    # Seen in Basware's or a customer's material; False means a guess from the naming pattern.
    verified: bool = False

    @property
    def issuer(self) -> str:
        return f"https://{self.name}"


DEFAULT_HOSTS: tuple[VirtualHost, ...] = (
    VirtualHost(
        name="api.basware.com", region=Region.EU, environment=Environment.PRODUCTION, verified=True
    ),
    VirtualHost(
        name="test-api.basware.com", region=Region.EU, environment=Environment.TEST, verified=True
    ),
    VirtualHost(name="api.us.basware.com", region=Region.US, environment=Environment.PRODUCTION),
    VirtualHost(
        name="test-api.us.basware.com",
        region=Region.US,
        environment=Environment.TEST,
        verified=True,
    ),
    VirtualHost(name="api.au.basware.com", region=Region.AU, environment=Environment.PRODUCTION),
    VirtualHost(name="test-api.au.basware.com", region=Region.AU, environment=Environment.TEST),
    VirtualHost(name="api.ca.basware.com", region=Region.CA, environment=Environment.PRODUCTION),
    VirtualHost(name="test-api.ca.basware.com", region=Region.CA, environment=Environment.TEST),
)


class ApiClient(BaseModel):
    """An API client provisioned on one host: OAuth2 client id and secret, tenant, companies."""

    client_id: str
    client_secret: SavedSecretStr
    region: Region = Region.EU
    environment: Environment = Environment.PRODUCTION
    bwcid: str = "SANDBOX-TENANT"
    company_codes: list[str] = Field(default_factory=lambda: ["BW00"])
    # Scopes this client may request; None grants every scope.
    allowed_scopes: list[str] | None = None


class WebhookSignature(BaseModel):
    """How notifications are signed. Basware's real recipe is unverified, so all of it is a setting.

    The signed bytes are the raw body, or `<timestamp>.<raw body>` when a timestamp header is set.
    """

    header: str = "x-bwapi-signature-256"
    encoding: str = Field(default="hex", pattern="^(hex|base64)$")
    prefix: str = ""
    timestamp_header: str | None = None


class WebhookDelivery(BaseModel):
    """Retries of a notification not answered with 2xx (Basware's own policy is unknown)."""

    attempts: int = Field(default=5, ge=1)
    backoff_seconds: float = Field(default=0.5, ge=0)
    timeout_seconds: float = Field(default=5.0, gt=0)


class SandboxConfig(BaseModel):
    hosts: list[VirtualHost] = Field(default_factory=lambda: list(DEFAULT_HOSTS))
    # A request whose Host header names no configured host and whose port is not bound to one
    # is served as this host (handy for `curl localhost:8730`); None answers 421 instead.
    default_host: str | None = "api.basware.com"
    token_lifetime_seconds: int = Field(default=3600, ge=300, le=86_400)
    # Delay between a POST's 200 and the target system's verdict in requestStatus.
    processing_delay_seconds: float = Field(default=0.05, ge=0)
    # A record posted again within this window makes the older post RecordExpired.
    record_expired_window_seconds: float = Field(default=1.0, ge=0)
    max_request_bytes: int = 6 * 1024 * 1024
    # GET /v1/accountingDocuments/status must be switched on by Basware per tenant.
    invoice_status_enabled: bool = True
    # Approve invoices that pass the three-way match without a back-door call (demos, benchmarks).
    auto_approve_matched_invoices: bool = False
    upload_url_lifetime_seconds: int = 3600
    webhook_signature: WebhookSignature = Field(default_factory=WebhookSignature)
    webhook_delivery: WebhookDelivery = Field(default_factory=WebhookDelivery)
    clients: list[ApiClient] = Field(default_factory=list)
    request_log_limit: int = Field(default=100_000, ge=0)

    @model_validator(mode="after")
    def _hosts_are_unique(self) -> SandboxConfig:
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError("host names must be unique")
        if self.default_host is not None and self.default_host not in names:
            raise ValueError(f"default_host {self.default_host} is not in hosts")
        return self

    def host(self, region: Region | str, environment: Environment | str) -> VirtualHost:
        for host in self.hosts:
            if host.region == region and host.environment == environment:
                return host
        raise KeyError(f"no host configured for {region} {environment}")


DEMO_CLIENT = ApiClient(
    client_id="demo-basware-client",
    client_secret=SecretStr("demo-basware-secret"),
    region=Region.EU,
    environment=Environment.PRODUCTION,
    bwcid="DEMO-TENANT",
    company_codes=["BW00", "1010"],
)


def tenant_clients(count: int) -> list[ApiClient]:
    """`count` customers of their own for the many-companies mode (`--tenants N`): customer n
    (from 1) has client `tenant-n-client` / `tenant-n-secret`, tenant `TENANT-n` and company
    code `Cn`, in the EU production host."""
    return [
        ApiClient(
            client_id=f"tenant-{n}-client",
            client_secret=SecretStr(f"tenant-{n}-secret"),
            bwcid=f"TENANT-{n}",
            company_codes=[f"C{n}"],
        )
        for n in range(1, count + 1)
    ]

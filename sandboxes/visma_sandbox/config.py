"""What a sandbox run looks like: clients, companies, limits and the switches tests flip.

Everything here is deterministic so the demo credentials and ids can be documented: the demo
client is `demo-visma-client` / `demo-visma-secret`, company n (from 1) has company id
`100000n`, tenant id uuid5(SANDBOX_NAMESPACE, "tenant-n") and a "customer tenant" id
uuid5(SANDBOX_NAMESPACE, "customer-n") that Visma Connect accepts but the ERP refuses (12027).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from visma_sandbox.timefmt import TimestampStyle

SANDBOX_NAMESPACE = uuid.UUID("9b1c2f4e-7d3a-4e5b-8c6d-0a1b2c3d4e5f")
SCOPE_PREFIX = "vismanet_erp_service_api:"
ALL_SCOPES = tuple(SCOPE_PREFIX + s for s in ("read", "create", "update", "delete"))
DEMO_CLIENT_ID = "demo-visma-client"
DEMO_CLIENT_SECRET = "demo-visma-secret"
DEMO_WEBHOOK_SECRET = "demo-visma-webhook-secret"

_COMPANY_NAMES = (
    ("Fjordvik Handel AS", "NO"),
    ("Nordlys Bygg AB", "SE"),
    ("Havbris Logistik A/S", "DK"),
    ("Revontuli Tekniikka Oy", "FI"),
)


class SandboxModel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=None, validate_assignment=True)


class ApiClient(SandboxModel):
    """An application registered in the Developer Portal and approved by tenants."""

    client_id: str
    client_secret: SecretStr
    allowed_scopes: tuple[str, ...] = ALL_SCOPES
    # Tenants whose administrator approved the app; None: every tenant in the sandbox.
    approved_tenants: tuple[str, ...] | None = None


class CompanyInfo(SandboxModel):
    company_id: str
    tenant_id: str
    customer_tenant_id: str
    name: str
    country: str
    base_currency: str
    # The ERP-side switch (preferences window) without which no webhook is sent.
    webhooks_enabled: bool = True

    @classmethod
    def demo(cls, number: int) -> CompanyInfo:
        name, country = _COMPANY_NAMES[(number - 1) % len(_COMPANY_NAMES)]
        if number > len(_COMPANY_NAMES):
            name = f"{name} {number}"
        return cls(
            company_id=str(1_000_000 + number),
            tenant_id=str(uuid.uuid5(SANDBOX_NAMESPACE, f"tenant-{number}")),
            customer_tenant_id=str(uuid.uuid5(SANDBOX_NAMESPACE, f"customer-{number}")),
            name=name,
            country=country,
            base_currency={"NO": "NOK", "SE": "SEK", "DK": "DKK", "FI": "EUR"}[country],
        )


class WebhookDelivery(SandboxModel):
    """How notifications go out. The default is what the product states: once, no retry."""

    retries: int = Field(default=0, ge=0)
    retry_delay_ms: float = Field(default=200, ge=0)
    duplicate: bool = False
    # Hold notifications for `reorder_window_ms` and send each batch newest first.
    reorder: bool = False
    reorder_window_ms: float = Field(default=100, ge=0)
    timeout_seconds: float = Field(default=5, gt=0)


class SandboxSettings(SandboxModel):
    """The knobs a running sandbox reads on every request; the back door can change them."""

    token_lifetime_seconds: float = Field(default=3600, gt=0)
    max_page_size: int = Field(default=1000, ge=1)
    # Per list route (entity name, e.g. "supplierinvoice"): overrides max_page_size.
    max_page_sizes: dict[str, int] = {}
    rate_limit: int = Field(default=15_000, ge=1)
    rate_limit_window_seconds: float = Field(default=3600, gt=0)
    # The historic rules against retry loops (off by default): at most N identical requests
    # per window, and no more after N identical failures in the window (docs/visma-net.md §8.2).
    same_request_limit: int | None = Field(default=None, ge=1)
    same_request_window_seconds: float = Field(default=60, gt=0)
    failing_request_limit: int | None = Field(default=None, ge=1)
    failing_request_window_seconds: float = Field(default=300, gt=0)
    # A synchronous call slower than this answers 504 (the 4-minute limit of
    # docs/visma-net.md §7.7); background calls (erp-api-background) are not limited.
    sync_timeout_seconds: float = Field(default=240, gt=0)
    company_id_mode: Literal["current", "legacy"] = "current"
    timestamp_style: TimestampStyle = TimestampStyle.NAIVE
    # Shown timestamps run this far ahead of the values filters compare with.
    clock_skew_seconds: float = 0
    # Added to every API answer (benchmarks and slow-network tests).
    latency_ms: float = Field(default=0, ge=0)
    webhook_delivery: WebhookDelivery = WebhookDelivery()
    # Visma requires https webhook URLs; the sandbox accepts http in test mode.
    allow_http_webhooks: bool = True


class SeedOptions(SandboxModel):
    companies: int = Field(default=2, ge=0)
    suppliers: int = Field(default=300, ge=0)
    purchase_orders: int = Field(default=600, ge=0)
    invoices: int = Field(default=600, ge=0)
    # Orders and invoices (this many of each, after the others) coded to the account and
    # department deactivated in Visma: what Basware must not take.
    stale_coded: int = Field(default=0, ge=0)
    seed: int = 42


class SandboxConfig(SandboxModel):
    settings: SandboxSettings = SandboxSettings()
    clients: tuple[ApiClient, ...] = (
        ApiClient(client_id=DEMO_CLIENT_ID, client_secret=SecretStr(DEMO_CLIENT_SECRET)),
    )
    seed: SeedOptions = SeedOptions()

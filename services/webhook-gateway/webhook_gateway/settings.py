"""MLC_GATEWAY_*: how the gateway verifies webhooks, and where it republishes them."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.asgi import ServerLimits
from mlconnector.topics import Topic
from mlconnector.visma import SIGNATURE_HEADER
from webhook_gateway.secret_source import SecretsByTenant
from webhook_gateway.verify import SignatureEncoding, SignatureScheme

# Basware's signing recipe is unverified (docs/basware-p2p.md §8.2): these defaults are the
# project's decision (docs/basware-p2p.md §10.5), and every part is a setting.
BASWARE_DEFAULT_SCHEME = SignatureScheme(
    header="x-bwapi-signature-256", encoding=SignatureEncoding.HEX
)
# Visma's dispatcher: base64 HMAC-SHA256 of the raw body (docs/visma-net.md §10.2).
VISMA_SCHEME = SignatureScheme(header=SIGNATURE_HEADER, encoding=SignatureEncoding.BASE64)


class GatewayTopics(BaseModel):
    model_config = ConfigDict(frozen=True)

    basware_events: str = Topic.BASWARE_EVENTS.value
    visma_notifications: str = Topic.VISMA_NOTIFICATIONS.value


class GatewaySettings(BaseSettings):
    """Nested values are JSON, e.g. MLC_GATEWAY_BASWARE_SECRETS='{"acme": [{"value": "..."}]}'."""

    model_config = SettingsConfigDict(env_prefix="MLC_GATEWAY_", extra="ignore")

    basware_signature: SignatureScheme = BASWARE_DEFAULT_SCHEME
    # Per tenant; "*" serves every tenant without its own entry. Until the credential store
    # holds webhook secrets, these are where the secrets come from.
    basware_secrets: SecretsByTenant = Field(default_factory=dict)
    visma_secrets: SecretsByTenant = Field(default_factory=dict)
    # How often the connections (and their webhook secrets) are re-read; a tenant not found
    # re-reads them at once, at most every `connections_miss_refresh`, so a new connection
    # is served within that and a flood of unknown tenants costs one read per interval.
    connections_refresh: timedelta = timedelta(seconds=30)
    connections_miss_refresh: timedelta = timedelta(seconds=1)
    # How long a retired secret stays valid after its `retired_at` (secret rotation).
    rotation_overlap: timedelta = timedelta(hours=24)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # A Visma body that carries its own time (`timestamp`) is refused when that time is
    # further than this from now: a signed body replayed later is stale, not new.
    visma_body_time_window: timedelta = timedelta(minutes=10)
    # The HTTP edge: how long a request's headers and its body may take to arrive, how many
    # connections may be open at once (more are closed at accept), how long an idle
    # keep-alive connection is kept, and how large the request headers may be.
    header_timeout: timedelta = timedelta(seconds=10)
    body_timeout: timedelta = timedelta(seconds=10)
    max_connections: int = Field(default=256, ge=1)
    keep_alive_timeout: timedelta = timedelta(seconds=5)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # Seen event ids are kept this long: longer than any sender's retry horizon.
    dedupe_ttl: timedelta = timedelta(days=7)
    dedupe_cleanup_interval: timedelta = timedelta(hours=1)
    # Visma does not retry, so a webhook waits at most this long for Kafka before a 503.
    publish_timeout: timedelta = timedelta(seconds=10)
    topics: GatewayTopics = Field(default_factory=GatewayTopics)

    def server_limits(self) -> ServerLimits:
        return ServerLimits(
            header_timeout=self.header_timeout,
            max_connections=self.max_connections,
            keep_alive_timeout=self.keep_alive_timeout,
            max_header_bytes=self.max_header_bytes,
        )

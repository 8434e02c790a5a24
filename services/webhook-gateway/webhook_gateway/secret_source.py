"""Where webhook signing secrets come from, which tenant a webhook belongs to, and which
secrets are valid right now.

Two sources, one protocol (`SecretSource`):
- `ConfiguredSecrets`: MLC_GATEWAY_BASWARE_SECRETS / MLC_GATEWAY_VISMA_SECRETS, keyed by
  tenant (Basware) and by Visma tenant id (Visma), "*" for any; the Visma tenant id is then
  also the tenant of the event.
- `ConnectionSecrets`: the connections (encrypted store or environment). A Basware webhook's
  path names the tenant (the Visma company id); a Visma webhook names the Visma tenant id,
  which the connection maps to its company id. Configured secrets for the same tenant are
  added, which is how a retired secret stays valid while connections hold only one.
Rotation: the new secret is added, the old one gets `retired_at`, and the old one stays
valid for the configured overlap after that, so webhooks signed in flight still verify.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

from mlconnector.connections import Connection
from mlconnector.contracts import utcnow

ANY_TENANT = "*"


class WebhookSecret(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: SecretStr
    retired_at: datetime | None = None


SecretsByTenant = dict[str, list[WebhookSecret]]


class TenantSecrets(BaseModel):
    """The tenant a webhook belongs to, and the secrets that may have signed it."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    secrets: tuple[WebhookSecret, ...]


class SecretSource(Protocol):
    async def basware(self, tenant: str) -> TenantSecrets | None: ...

    async def visma(self, visma_tenant_id: str) -> TenantSecrets | None: ...


def valid_keys(secrets: Sequence[WebhookSecret], now: datetime, overlap: timedelta) -> list[bytes]:
    """The HMAC keys to try: current secrets, and retired ones still inside the overlap."""
    return [
        secret.value.get_secret_value().encode()
        for secret in secrets
        if secret.retired_at is None or now < secret.retired_at + overlap
    ]


class ConfiguredSecrets:
    def __init__(self, basware: SecretsByTenant, visma: SecretsByTenant) -> None:
        self._basware = basware
        self._visma = visma

    async def basware(self, tenant: str) -> TenantSecrets | None:
        return _for_tenant(self._basware, tenant)

    async def visma(self, visma_tenant_id: str) -> TenantSecrets | None:
        return _for_tenant(self._visma, visma_tenant_id)

    def __repr__(self) -> str:
        return f"ConfiguredSecrets(basware={sorted(self._basware)}, visma={sorted(self._visma)})"


def _for_tenant(secrets: SecretsByTenant, tenant: str) -> TenantSecrets | None:
    found = secrets.get(tenant) or secrets.get(ANY_TENANT)
    return TenantSecrets(tenant=tenant, secrets=tuple(found)) if found else None


ConnectionLoader = Callable[[], Awaitable[Sequence[Connection]]]


class ConnectionSecrets:
    """Connections are re-read every `refresh`, so a new or changed connection applies
    without a restart while a webhook flood does not turn into a flood of store reads."""

    def __init__(
        self, load: ConnectionLoader, configured: ConfiguredSecrets, refresh: timedelta
    ) -> None:
        self._load = load
        self._configured = configured
        self._refresh = refresh
        self._cached: Sequence[Connection] = ()
        self._loaded_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def _connections(self) -> Sequence[Connection]:
        async with self._lock:
            now = utcnow()
            if self._loaded_at is None or now - self._loaded_at >= self._refresh:
                self._cached = await self._load()
                self._loaded_at = now
            return self._cached

    async def basware(self, tenant: str) -> TenantSecrets | None:
        connection = next((c for c in await self._connections() if c.tenant == tenant), None)
        own = connection.basware_webhook_secret if connection else None
        return _merged(tenant if connection else None, own, await self._configured.basware(tenant))

    async def visma(self, visma_tenant_id: str) -> TenantSecrets | None:
        connection = next(
            (c for c in await self._connections() if c.visma.tenant_id == visma_tenant_id), None
        )
        own = connection.visma_webhook_secret if connection else None
        configured = await self._configured.visma(visma_tenant_id)
        return _merged(connection.tenant if connection else None, own, configured)


def _merged(
    tenant: str | None, own: SecretStr | None, configured: TenantSecrets | None
) -> TenantSecrets | None:
    secrets = ((WebhookSecret(value=own),) if own else ()) + (
        configured.secrets if configured else ()
    )
    tenant = tenant or (configured.tenant if configured else None)
    if tenant is None or not secrets:
        return None
    return TenantSecrets(tenant=tenant, secrets=secrets)

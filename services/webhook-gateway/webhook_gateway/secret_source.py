"""Where webhook signing secrets come from, which tenant a webhook belongs to, and which
secrets are valid right now.

Two sources, one protocol (`SecretSource`):
- `ConfiguredSecrets`: MLC_GATEWAY_BASWARE_SECRETS / MLC_GATEWAY_VISMA_SECRETS, keyed by
  tenant (Basware) and by Visma tenant id (Visma). A tenant named there is known by that
  name (the Visma tenant id is then also the tenant of the event). "*" never makes a tenant
  known: its secrets serve only tenants a connection knows, so one body signed with a
  shared secret is not accepted for a path like `..` or `evil-tenant`.
- `ConnectionSecrets`: the connections (encrypted store or environment). A Basware webhook's
  path names the tenant (the Visma company id); a Visma webhook names the Visma tenant id,
  which the connection maps to its company id. Configured secrets for the same tenant are
  added, which is how a retired secret stays valid while connections hold only one.
Rotation: the new secret is added, the old one gets `retired_at`, and the old one stays
valid for the configured overlap after that, so webhooks signed in flight still verify.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

from mlconnector.connection_store import READ_FAILURES
from mlconnector.connections import Connection
from mlconnector.contracts import utcnow

log = logging.getLogger(__name__)

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
        return _named(self._basware, tenant)

    async def visma(self, visma_tenant_id: str) -> TenantSecrets | None:
        return _named(self._visma, visma_tenant_id)

    def basware_for_connection(self, tenant: str) -> tuple[WebhookSecret, ...]:
        """The configured secrets of a tenant a connection knows: its own entry, or "*"."""
        return _for_known(self._basware, tenant)

    def visma_for_connection(self, visma_tenant_id: str) -> tuple[WebhookSecret, ...]:
        return _for_known(self._visma, visma_tenant_id)

    def __repr__(self) -> str:
        return f"ConfiguredSecrets(basware={sorted(self._basware)}, visma={sorted(self._visma)})"


def _named(secrets: SecretsByTenant, tenant: str) -> TenantSecrets | None:
    found = secrets.get(tenant) if tenant != ANY_TENANT else None
    return TenantSecrets(tenant=tenant, secrets=tuple(found)) if found else None


def _for_known(secrets: SecretsByTenant, tenant: str) -> tuple[WebhookSecret, ...]:
    return tuple(secrets.get(tenant) or secrets.get(ANY_TENANT) or ())


ConnectionLoader = Callable[[], Awaitable[Sequence[Connection]]]


class ConnectionSecrets:
    """Connections are re-read every `refresh`, so a new or changed connection applies
    without a restart while a webhook flood does not turn into a flood of store reads. A
    tenant not found re-reads them at once, at most every `miss_refresh`: a connection added
    a moment ago is served from its first webhook. A read that fails (the store down, a
    master key not loaded yet) keeps the connections read before, so webhooks that verified
    a moment ago still do."""

    def __init__(
        self,
        load: ConnectionLoader,
        configured: ConfiguredSecrets,
        refresh: timedelta,
        miss_refresh: timedelta = timedelta(seconds=1),
    ) -> None:
        self._load = load
        self._configured = configured
        self._refresh = refresh
        self._miss_refresh = miss_refresh
        self._cached: Sequence[Connection] = ()
        self._loaded_at: datetime | None = None
        self._missed_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def _connections(self) -> Sequence[Connection]:
        async with self._lock:
            now = utcnow()
            if self._loaded_at is None or now - self._loaded_at >= self._refresh:
                await self._read(now)
            return self._cached

    async def _after_a_miss(self) -> Sequence[Connection]:
        async with self._lock:
            now = utcnow()
            if self._missed_at is None or now - self._missed_at >= self._miss_refresh:
                self._missed_at = now
                await self._read(now)
            return self._cached

    async def _read(self, now: datetime) -> None:
        # Tried once per interval, failed or not: a broken store is not hammered.
        self._loaded_at = now
        try:
            self._cached = await self._load()
        except READ_FAILURES as error:
            # The error names a key id or a field at most, never a secret (vault).
            log.error("connections not re-read, the last ones stay: %s", error)

    async def _find(self, matches: Callable[[Connection], bool]) -> Connection | None:
        found = next((c for c in await self._connections() if matches(c)), None)
        if found is None:
            found = next((c for c in await self._after_a_miss() if matches(c)), None)
        return found

    async def basware(self, tenant: str) -> TenantSecrets | None:
        connection = await self._find(lambda c: c.tenant == tenant)
        if connection is None:
            return await self._configured.basware(tenant)
        own = connection.basware_webhook_secret
        return _merged(tenant, own, self._configured.basware_for_connection(tenant))

    async def visma(self, visma_tenant_id: str) -> TenantSecrets | None:
        connection = await self._find(lambda c: c.visma.tenant_id == visma_tenant_id)
        if connection is None:
            return await self._configured.visma(visma_tenant_id)
        own = connection.visma_webhook_secret
        configured = self._configured.visma_for_connection(visma_tenant_id)
        return _merged(connection.tenant, own, configured)


def _merged(
    tenant: str, own: SecretStr | None, configured: tuple[WebhookSecret, ...]
) -> TenantSecrets | None:
    secrets = ((WebhookSecret(value=own),) if own else ()) + configured
    return TenantSecrets(tenant=tenant, secrets=secrets) if secrets else None

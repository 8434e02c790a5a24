"""What webhook-gateway holds while it runs: its pool and the store of webhook ids seen, the
connections whose secrets verify webhooks, and the loop that forgets old ids."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mlconnector.connections import Connection, ConnectionSource
from mlconnector.lifecycle import ServiceLifecycle, opened
from mlconnector.settings import DatabaseSettings
from mlconnector.vault import VaultError
from webhook_gateway import SERVICE_NAME
from webhook_gateway.dedupe import SeenStore, forget_periodically
from webhook_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


class GatewayLifecycle(ServiceLifecycle[GatewaySettings]):
    loops_name = "webhook id cleanup"

    def __init__(self, database: DatabaseSettings, settings: GatewaySettings) -> None:
        super().__init__(SERVICE_NAME, database, settings, pool_size=8)
        self._source: ConnectionSource | None = None
        self._seen: SeenStore | None = None

    def seen(self) -> SeenStore:
        return opened(self._seen, "the store of webhook ids seen")

    async def connections(self) -> Sequence[Connection]:
        """The tenants whose webhook secrets verify webhooks (none without a source)."""
        return await self._source.list() if self._source is not None else ()

    async def open(self) -> None:
        self._seen = SeenStore(await self.open_database("webhook_gateway"))
        try:
            self._source = await self.open_connections()
        except VaultError as error:
            # Without a master key the store cannot be read: the gateway still verifies
            # webhooks for the tenants MLC_GATEWAY_*_SECRETS name ("*" names none).
            log.warning("no stored connections: %s", error)

    async def begin(self) -> None:
        await super().begin()
        settings = self.settings
        self.run_loop(
            "webhook-id-cleanup",
            forget_periodically(self.seen(), settings.dedupe_ttl, settings.dedupe_cleanup_interval),
        )

"""The writer's background work, on every instance: a heartbeat, and rounds (at start, every
`follow_up_interval_seconds`, and when a batch asks) that follow pending requests, confirm
uploads whose answer was lost, take up uploads parked for Visma's quota once its window
reset, and release parked keys whose prerequisites are accepted.

Whatever a round claims it publishes first and settles in PostgreSQL after, so a crash between
the two repeats a result (consumers dedupe by event id) and never loses one; what Basware
accepted is remembered before the publish, so that crash posts nothing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from basware_writer.domain import Outcomes, UploadIntent
from basware_writer.executor import TenantExecutor
from basware_writer.metrics import PARKED, PARKED_KEYS, PENDING, QUOTA_WAITS
from basware_writer.settings import WriterSettings
from basware_writer.stores import WriterStores
from mlconnector.contracts import Outcome

log = logging.getLogger(__name__)

# How much one round takes on, per kind of work.
PENDING_PER_ROUND = 1000
RELEASES_PER_ROUND = 10
# A batch publishes right after it parks: a hold this old was left behind by a failure.
STALE_HOLD_SECONDS = 120.0

ExecutorOf = Callable[[str], Awaitable[TenantExecutor | None]]
Publish = Callable[[TenantExecutor, Outcomes], Awaitable[None]]


class FollowUp:
    def __init__(
        self,
        stores: WriterStores,
        executor_of: ExecutorOf,
        publish: Publish,
        settings: WriterSettings,
    ) -> None:
        self._stores = stores
        self._executor_of = executor_of
        self._publish = publish
        self._settings = settings
        self._wake = asyncio.Event()
        self._tenants_seen: set[str] = set()

    @property
    def _owner(self) -> str:
        return self._stores.owner

    def wake(self) -> None:
        """Run a round now (a batch accepted a vendor that parked changes wait for)."""
        self._wake.set()

    async def heartbeat(self) -> None:
        while True:
            try:
                await self._stores.instances.beat()
            except Exception:
                log.exception("heartbeat failed; claims of this writer may be taken over")
            await asyncio.sleep(self._settings.heartbeat_seconds)

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("follow-up round failed; tried again next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self._settings.follow_up_interval_seconds
                )
            self._wake.clear()

    async def round(self) -> None:
        swept = await self._stores.parked.sweep_holds(self._owner, STALE_HOLD_SECONDS)
        if swept:
            log.warning("%d parked keys were still held by a finished batch; released", swept)
        await self.follow_pending()
        await self.confirm_uploads()
        await self.resume_quota_waits()
        for _ in range(RELEASES_PER_ROUND):
            if await self.release() < self._settings.release_max_keys:
                break
        await self.update_gauges()

    async def _deliver(
        self, tenant: str, work: Callable[[TenantExecutor], Awaitable[Outcomes]]
    ) -> tuple[TenantExecutor, Outcomes] | None:
        executor = await self._executor_of(tenant)
        if executor is None:
            log.error("no connection for tenant %s: its pending work waits", tenant)
            return None
        outcomes = await work(executor)
        # Known to every writer before the publish; the records stay pending (or uploading)
        # until their results are out.
        await self._stores.accepted.remember(tenant, outcomes.settlement.everything_accepted())
        await self._publish(executor, outcomes)
        return executor, outcomes

    async def follow_pending(self) -> None:
        timeout = self._settings.instance_timeout_seconds
        claimed = await self._stores.pending.claim(self._owner, timeout, PENDING_PER_ROUND)
        for tenant, records in claimed.items():
            try:
                done = await self._deliver(tenant, partial(TenantExecutor.resume, records=records))
            except Exception:
                log.exception("following %d pending records of %s failed", len(records), tenant)
                done = None
            if done is None:
                await self._stores.pending.hand_off(tenant, records, self._owner)
                continue
            executor, outcomes = done
            await executor.settle(outcomes.settlement)
            if outcomes.deliveries:
                log.info(
                    "%s: %d pending records final (%d still with Basware)",
                    tenant,
                    len(outcomes.settlement.done),
                    len(records) - len(outcomes.settlement.done),
                )

    async def confirm_uploads(self) -> None:
        settings = self._settings
        claimed = await self._stores.uploads.claim_unconfirmed(
            self._owner,
            settings.instance_timeout_seconds,
            settings.upload_lookups_per_round,
            settings.upload_lookup_interval_seconds,
            # As many as a batch of the consumer takes: they cost a publish, no request.
            settings.batch_max_records,
        )
        await self._confirm(claimed)

    async def resume_quota_waits(self) -> None:
        """Uploads parked for Visma's quota whose window has reset: uploaded now (one that
        finds the quota spent again parks again)."""
        settings = self._settings
        claimed = await self._stores.uploads.claim_quota_due(
            self._owner, settings.instance_timeout_seconds, settings.quota_resumes_per_round
        )
        await self._confirm(claimed)

    async def _confirm(self, claimed: dict[str, list[UploadIntent]]) -> None:
        uploads = self._stores.uploads
        for tenant, intents in claimed.items():
            try:
                done = await self._deliver(
                    tenant, partial(TenantExecutor.confirm_uploads, intents=intents)
                )
            except Exception:
                log.exception("confirming %d uploads of %s failed", len(intents), tenant)
                done = None
            if done is None:
                await uploads.hand_off(tenant, intents, self._owner)
                continue
            executor, outcomes = done
            await executor.settle(outcomes.settlement)

    async def release(self) -> int:
        """Delivers what waits in keys that are ready now; returns how many keys it took."""
        timeout = self._settings.instance_timeout_seconds
        parking = self._stores.parked
        keys = await parking.claim_ready(self._owner, timeout, self._settings.release_max_keys)
        for tenant in dict.fromkeys(k.tenant for k in keys):
            mine = [k for k in keys if k.tenant == tenant]
            suppliers = [k.supplier_number for k in mine]
            entries = sorted((c for k in mine for c in k.changes), key=lambda c: c.seq)
            try:
                release = partial(
                    TenantExecutor.deliver,
                    changes=[c.change for c in entries],
                    releasing=set(suppliers),
                )
                done = await self._deliver(tenant, release)
            except Exception:
                log.exception("releasing %d parked keys of %s failed", len(suppliers), tenant)
                done = None
            if done is None:
                await parking.finish(self._owner, tenant, suppliers, done=[])
                continue
            _, outcomes = done
            still_parked = {
                d.change.event_id
                for d in outcomes.deliveries
                if d.verdict.outcome is Outcome.PARKED
            }
            released = [e.seq for e in entries if e.change.event_id not in still_parked]
            await parking.finish(self._owner, tenant, suppliers, done=released)
            log.info(
                "%s: released %d parked changes of %d suppliers (%d wait on)",
                tenant,
                len(released),
                len(suppliers),
                len(entries) - len(released),
            )
        return len(keys)

    async def update_gauges(self) -> None:
        parked, keys = await self._stores.parked.counts()
        pending = await self._stores.pending.counts()
        uploading = await self._stores.uploads.open_count()
        tenants = set(parked) | set(pending) | set(uploading) | self._tenants_seen
        for tenant in tenants:
            PARKED.labels(tenant).set(parked.get(tenant, 0))
            PENDING.labels(tenant).set(pending.get(tenant, 0) + uploading.get(tenant, 0))
        PARKED_KEYS.set(keys)
        quota_waits = await self._stores.uploads.quota_waits()
        for tenant in tenants | set(quota_waits):
            QUOTA_WAITS.labels(tenant).set(quota_waits.get(tenant, (0, None))[0])
        self._tenants_seen = tenants | set(quota_waits)

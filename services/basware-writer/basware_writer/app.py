"""basware-writer's FastStream app: change events in batches, Basware outcomes as results.

A batch's offsets are committed once it is safe: its result events are acknowledged by Kafka,
and whatever has no result yet is in PostgreSQL (pending requests, claimed uploads, parked
changes), where the follow-up of any writer instance finishes it. When publishing fails, or
the database is unreachable, the batch is rewound and taken again (Basware upserts are
idempotent, uploads are claimed once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage
from pydantic import ValidationError

from basware_writer.accepted_store import AcceptedStore
from basware_writer.budget import RateBudget
from basware_writer.delivery import Outcomes, TenantWriter, WriterStores
from basware_writer.follow_up import FollowUp
from basware_writer.instances import InstanceRegistry
from basware_writer.metrics import BATCH_SECONDS, MALFORMED, RESULTS
from basware_writer.outcomes import failed
from basware_writer.parking import ParkingStore
from basware_writer.pending import PendingStore
from basware_writer.prepared import fan_out
from basware_writer.settings import WriterSettings
from basware_writer.uploads import UploadStore
from mlconnector.connection_store.source import open_connection_source
from mlconnector.connections import Connection, ConnectionNotFound, ConnectionSource, find_tenant
from mlconnector.contracts import ChangeEvent, DeliveryResult, Outcome
from mlconnector.kafka import (
    consumer_options,
    event_from_message,
    make_broker,
    publish_events,
    raw_batch,
)
from mlconnector.migrations import apply_migrations
from mlconnector.readiness import Readiness, database_probe, tasks_probe
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings

log = logging.getLogger("basware_writer")

# The database cannot be reached: the batch is taken again rather than answered "failed".
DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
REWIND_PAUSE_SECONDS = 1.0


def unreadable(record: ConsumerRecord[bytes, bytes], exc: Exception) -> None:
    # No tenant or record to attach a result to: the audit store keeps the raw message
    # (replayable by offset range once the producer is fixed); here it is counted and logged.
    MALFORMED.inc()
    log.error(
        "message %s[%d]@%d is not a change event, not delivered (kept in the audit log): %s",
        record.topic,
        record.partition,
        record.offset,
        str(exc).splitlines()[0],
    )


def log_results(results: Sequence[DeliveryResult], what: str, seconds: float | None) -> None:
    summary: defaultdict[str, int] = defaultdict(int)
    for result in results:
        RESULTS.labels(result.tenant, result.entity.value, result.outcome.value).inc()
        summary[result.outcome.value] += 1
        if result.outcome is Outcome.REJECTED:
            log.warning(
                "rejected %s %s/%s: %s",
                result.tenant,
                result.entity.value,
                result.entity_id,
                "; ".join(r.message for r in result.reasons),
            )
    if results:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.items()))
        if seconds is None:
            log.info("%s: %s", what, counts)
        else:
            log.info("%s: %s in %.2f s", what, counts, seconds)


class Runtime:
    """What the app opens at start and closes at shutdown."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.stores: WriterStores | None = None
        self.registry: InstanceRegistry | None = None
        self.source: ConnectionSource | None = None
        self.follow_up: FollowUp | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def ready(self) -> tuple[WriterStores, ConnectionSource, FollowUp]:
        if self.stores is None or self.source is None or self.follow_up is None:
            raise RuntimeError("basware-writer consumed before its start-up finished")
        return self.stores, self.source, self.follow_up


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: WriterSettings | None = None,
    connections: ConnectionSource | None = None,
    changes_topic: str | None = None,
    results_topic: str | None = None,
) -> AsgiFastStream:
    kafka = kafka or KafkaSettings()
    database = database or DatabaseSettings()
    settings = settings or WriterSettings()
    changes = changes_topic or settings.changes_topic
    results_to = results_topic or settings.results_topic
    broker = make_broker(kafka, client_id="basware-writer")
    exits = contextlib.AsyncExitStack()
    writers: dict[str, TenantWriter] = {}
    runtime = Runtime()
    readiness = Readiness(broker)
    readiness.add("database", database_probe(lambda: runtime.pool))
    readiness.add(
        "follow-up", tasks_probe("the follow-up", lambda: runtime.tasks if runtime.tasks else None)
    )

    def writer_for(connection: Connection, stores: WriterStores) -> TenantWriter:
        writer = writers.get(connection.name)
        if writer is None or writer.connection != connection:
            # A changed connection (rotated secret, new region) gets fresh clients.
            writer = writers[connection.name] = TenantWriter(
                connection, connection.basware_client(), connection.visma_client(), settings, stores
            )
        return writer

    async def writer_of(tenant: str) -> TenantWriter | None:
        stores, source, _ = runtime.ready()
        try:
            return writer_for(await find_tenant(source, tenant), stores)
        except ConnectionNotFound:
            return None

    async def results_of(writer: TenantWriter, outcomes: Outcomes) -> list[DeliveryResult]:
        region = await writer.region()
        return [d.result(region) for d in outcomes.deliveries]

    async def publish_follow_up(writer: TenantWriter, outcomes: Outcomes) -> None:
        results = await results_of(writer, outcomes)
        await publish_events(broker, results_to, results)
        log_results(results, f"follow-up of {writer.tenant}", None)

    async def deliver_tenant(
        tenant: str, batch: Sequence[ChangeEvent]
    ) -> tuple[list[DeliveryResult], TenantWriter | None, Outcomes]:
        """The tenant's results, its writer and the outcomes behind them."""
        writer = await writer_of(tenant)
        if writer is None:
            verdict = failed(
                f"no connection is configured for Visma company {tenant}",
                attempts=0,
                category="Configuration",
            )
            return [d.result(None) for d in fan_out(batch, verdict)], None, Outcomes()
        try:
            outcomes = await writer.deliver(batch)
        except DATABASE_DOWN:
            raise
        except Exception as exc:
            # A bug or an outage here must not loop on the batch nor lose it: every change
            # becomes a failed result, visible and replayable.
            log.exception("delivering %d changes of %s failed", len(batch), tenant)
            verdict = failed(f"internal error: {type(exc).__name__}", attempts=1)
            return [d.result(None) for d in fan_out(batch, verdict)], None, Outcomes()
        return await results_of(writer, outcomes), writer, outcomes

    async def let_go(delivered: Sequence[tuple[Any, TenantWriter | None, Outcomes]]) -> None:
        for _, writer, outcomes in delivered:
            if writer is not None:
                with contextlib.suppress(*DATABASE_DOWN):
                    await writer.let_go(outcomes)

    @broker.subscriber(
        changes,
        group_id="basware-writer",
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        decoder=raw_batch,
        **consumer_options(kafka),
    )
    async def on_changes(message: KafkaMessage) -> None:
        started = time.monotonic()
        _, _, follow_up = runtime.ready()
        records: tuple[ConsumerRecord[bytes, bytes], ...] = message.raw_message
        by_tenant: dict[str, list[ChangeEvent]] = defaultdict(list)
        for record in records:
            try:
                event = event_from_message(dict(record.headers), record.value or b"")
            except (KeyError, ValueError, ValidationError) as exc:
                unreadable(record, exc)
                continue
            if not isinstance(event, ChangeEvent):
                unreadable(record, TypeError(f"{event.event_type} on the changes topic"))
                continue
            by_tenant[event.tenant].append(event)
        answers = await asyncio.gather(
            *(deliver_tenant(tenant, batch) for tenant, batch in by_tenant.items()),
            return_exceptions=True,
        )
        delivered = [a for a in answers if not isinstance(a, BaseException)]
        try:
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            results = [result for found, _, _ in delivered for result in found]
            await publish_events(broker, results_to, results)
        except Exception:
            log.exception("batch of %d changes not finished; it will be taken again", len(records))
            await let_go(delivered)
            await message.nack()
            await asyncio.sleep(REWIND_PAUSE_SECONDS)
            return
        await let_go(delivered)
        try:
            await message.ack()
        except KafkaError as exc:
            # The partitions moved to another writer meanwhile: it takes the batch again and
            # finds what this one did in PostgreSQL (nothing is posted or uploaded twice).
            log.warning("offsets of a batch not committed (%s); another writer takes it", exc)
        BATCH_SECONDS.observe(time.monotonic() - started)
        log_results(results, f"batch of {len(records)} changes", time.monotonic() - started)
        if any(outcomes.release for _, _, outcomes in delivered):
            follow_up.wake()

    async def start() -> None:
        pool = await asyncpg.create_pool(database.database_url, min_size=1, max_size=12)
        async with pool.acquire() as conn:
            await apply_migrations(conn, "basware_writer", owner="basware-writer")
        accepted = AcceptedStore(pool)
        stores = WriterStores(
            accepted=accepted,
            pending=PendingStore(pool, accepted),
            uploads=UploadStore(pool, accepted),
            parking=ParkingStore(pool),
            budget=RateBudget(pool, settings),
            instance=settings.instance,
        )
        registry = InstanceRegistry(pool, settings.instance)
        # Alive before any claim is made, so no other instance takes this one's work.
        await registry.beat()
        runtime.pool, runtime.stores, runtime.registry = pool, stores, registry
        runtime.source = connections or await exits.enter_async_context(
            open_connection_source(database.database_url)
        )
        runtime.follow_up = FollowUp(stores, registry, writer_of, publish_follow_up, settings)

    async def begin() -> None:
        _, _, follow_up = runtime.ready()
        runtime.tasks = [
            asyncio.create_task(follow_up.heartbeat(), name="writer-heartbeat"),
            asyncio.create_task(follow_up.run(), name="writer-follow-up"),
        ]

    async def halt() -> None:
        for task in runtime.tasks:
            task.cancel()
        for task in runtime.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop() -> None:
        if runtime.registry is not None:
            # What this instance claimed is free for the others at once.
            with contextlib.suppress(*DATABASE_DOWN):
                await runtime.registry.leave()
        for writer in writers.values():
            await writer.basware.aclose()
            await writer.visma.aclose()
        await exits.aclose()
        if runtime.pool is not None:
            await runtime.pool.close()

    return service_app(
        broker,
        readiness=readiness,
        on_startup=[start],
        after_startup=[begin],
        on_shutdown=[halt],
        after_shutdown=[stop],
    )

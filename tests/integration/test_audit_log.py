"""The audit log on the real broker and PostgreSQL: every message once, append-only,
tamper-evident, and the same schema whether fresh or upgraded."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from importlib import resources

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from audit_support import (
    TENANT,
    append_as_before_007,
    fetch_log,
    logged,
    result_for,
    running_audit_store,
    supplier_change,
    wait_for_log,
)
from conftest import TopicNames
from typer.testing import CliRunner

from audit_store.lifecycle import migrate
from audit_store.recorder import Recorder
from mlconnector.audit.rows import LogEntry
from mlconnector.audit.verify import verify_log
from mlconnector.contracts import (
    BaswareNotification,
    Entity,
    Event,
    InvoiceStatusChanged,
    Outcome,
    VismaNotification,
)
from mlconnector.kafka import event_headers
from mlconnector.migrations import _LEDGER as MIGRATIONS_LEDGER
from mlconnector.migrations import apply_migrations
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector_cli.__main__ import app as cli
from mlconnector_cli.stack import Stack, fresh_database

pytestmark = pytest.mark.integration

ALL_IDS = "SELECT event_id FROM audit_log"


def events_for_every_topic(topics: TopicNames, n: int) -> list[tuple[str, Event]]:
    """n events on each of the four topics."""
    published: list[tuple[str, Event]] = []
    for i in range(n):
        number = f"S{i:03d}"
        change = supplier_change(number)
        published += [
            (topics[Topic.VISMA_CHANGES], change),
            (topics[Topic.BASWARE_RESULTS], result_for(change, Outcome.DELIVERED)),
            (
                topics[Topic.VISMA_NOTIFICATIONS],
                VismaNotification(
                    event_id=str(uuid.uuid4()),
                    tenant=TENANT,
                    notification_id=f"n{i}",
                    entity=Entity.SUPPLIER,
                    event="update",
                    record_key=number,
                ),
            ),
            (
                topics[Topic.BASWARE_EVENTS],
                BaswareNotification(
                    event_id=str(uuid.uuid4()),
                    tenant=TENANT,
                    task_id=f"t{i}",
                    task_type="AccountingDocuments",
                    document_id=f"D{i}",
                )
                if i % 2
                else InvoiceStatusChanged(
                    event_id=str(uuid.uuid4()),
                    tenant=TENANT,
                    supplier_number=number,
                    entity_id=f"INV/{i}",
                    basware_status="approved",
                ),
            ),
        ]
    return published


class Produced:
    """Publishes messages and remembers the end offset of every partition it wrote to."""

    def __init__(self) -> None:
        self.ends: dict[tuple[str, int], int] = {}

    async def send(
        self,
        kafka: KafkaSettings,
        messages: Sequence[tuple[str, bytes, bytes | None, list[tuple[str, bytes | None]]]],
    ) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for topic, value, key, headers in messages:
                meta = await producer.send_and_wait(topic, value, key=key, headers=headers)
                chain = (meta.topic, meta.partition)
                self.ends[chain] = max(self.ends.get(chain, 0), meta.offset + 1)
        finally:
            await producer.stop()

    async def send_events(self, kafka: KafkaSettings, events: Sequence[tuple[str, Event]]) -> None:
        await self.send(
            kafka,
            [
                (
                    topic,
                    event.model_dump_json().encode(),
                    event.key.encode(),
                    [(k, v.encode()) for k, v in event_headers(event).items()],
                )
                for topic, event in events
            ],
        )


async def wait_until_committed(
    kafka: KafkaSettings, group: str, ends: dict[tuple[str, int], int]
) -> None:
    """Until the group committed past every message produced: nothing is left to read."""
    # A member of the group that never joins it, only to read its committed offsets.
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await reader.start()
    try:
        async with asyncio.timeout(60):
            for (topic, partition), end in ends.items():
                while (await reader.committed(TopicPartition(topic, partition)) or 0) < end:
                    await asyncio.sleep(0.05)
    finally:
        await reader.stop()


async def test_every_message_of_every_topic_lands_once_across_a_restart(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    group = f"audit-store-{topics.suffix}"  # running_audit_store's group
    events = events_for_every_topic(topics, 25)
    first, rest = events[: len(events) // 2], events[len(events) // 2 :]
    produced = Produced()
    await produced.send_events(kafka_settings, first)
    odd = [
        # No event-id header and a JSON body without one: a synthetic id from its offset.
        (topics[Topic.VISMA_CHANGES], b'{"hello": "no id"}', None, []),
        # Not JSON, with a header value that is not UTF-8: stored as bytes all the same.
        (
            topics[Topic.BASWARE_EVENTS],
            b"\xff\xfe not json",
            b"k",
            [("x-raw", b"\xff\x00"), ("x-none", None)],
        ),
    ]
    expected = len(events) + len(odd)

    # The first instance stops after the first half; it may not have committed all of it.
    async with running_audit_store(kafka_settings, database_url, topics, batch=10):
        await wait_for_log(database_url, ALL_IDS, count=len(first))
    assert len(await fetch_log(database_url, ALL_IDS)) == len(first)

    # The rest, then everything again (duplicates by event id); a second instance takes over.
    await produced.send_events(kafka_settings, rest)
    await produced.send(kafka_settings, odd)
    await produced.send_events(kafka_settings, events)
    async with running_audit_store(kafka_settings, database_url, topics):
        await wait_for_log(database_url, ALL_IDS, count=expected)
        await wait_until_committed(kafka_settings, group, produced.ends)

    ids = [r["event_id"] for r in await fetch_log(database_url, ALL_IDS)]
    assert len(ids) == len(set(ids)) == expected
    assert {e.event_id for _, e in events} <= set(ids)
    conn = await asyncpg.connect(database_url)
    try:
        per_topic = {
            r["topic"]: r["count"]
            for r in await conn.fetch("SELECT topic, count(*) FROM audit_log GROUP BY topic")
        }
        raw = await conn.fetchrow(
            "SELECT event_id, payload, body, headers FROM audit_log WHERE body = $1",
            b"\xff\xfe not json",
        )
        no_id = await conn.fetchval(
            'SELECT event_id FROM audit_log WHERE payload = \'{"hello": "no id"}\'::jsonb'
        )
        report = await verify_log(conn)
    finally:
        await conn.close()
    assert per_topic == {
        topics[Topic.VISMA_CHANGES]: 26,
        topics[Topic.BASWARE_RESULTS]: 25,
        topics[Topic.VISMA_NOTIFICATIONS]: 25,
        topics[Topic.BASWARE_EVENTS]: 26,
    }
    assert raw is not None
    assert raw["payload"] is None
    assert raw["event_id"].startswith(f"kafka:{topics[Topic.BASWARE_EVENTS]}/")
    assert raw["headers"] == '[["x-raw", {"base64": "/wA="}], ["x-none", null]]'
    assert no_id.startswith(f"kafka:{topics[Topic.VISMA_CHANGES]}/")
    assert report.ok, report.problems


def entries(topic: str, partition: int, count: int, first_offset: int = 0) -> list[LogEntry]:
    return logged(
        [
            (
                supplier_change(f"T{partition}-{first_offset + i}"),
                topic,
                partition,
                first_offset + i,
            )
            for i in range(count)
        ]
    )


async def seeded_pool(database_url: str, *batches: list[LogEntry]) -> asyncpg.Pool:
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    recorder = Recorder(pool)
    for batch in batches:
        await recorder.append(batch)
    return pool


async def test_the_database_refuses_update_delete_and_truncate(database_url: str) -> None:
    pool = await seeded_pool(database_url, entries("visma.changes", 0, 3))
    try:
        async with pool.acquire() as conn:
            for statement in (
                "UPDATE audit_log SET tenant = 'someone else'",
                "DELETE FROM audit_log WHERE chain_position = 2",
                "TRUNCATE audit_log",
                "UPDATE audit_chain_head SET chain_position = 1",
                "DELETE FROM audit_chain_head",
            ):
                with pytest.raises(asyncpg.RaiseError, match="refused"):
                    await conn.execute(statement)
            assert await conn.fetchval("SELECT count(*) FROM audit_log") == 3
    finally:
        await pool.close()


async def test_verify_reports_rows_changed_or_removed_behind_the_trigger(
    database_url: str,
) -> None:
    pool = await seeded_pool(
        database_url, entries("visma.changes", 0, 6), entries("visma.changes", 1, 3)
    )
    try:
        async with pool.acquire() as conn:
            assert (await verify_log(conn)).ok
            by_position = {
                (r["kafka_partition"], r["chain_position"]): r["event_id"]
                for r in await conn.fetch(
                    "SELECT kafka_partition, chain_position, event_id FROM audit_log"
                )
            }
            # A superuser goes around the append-only trigger.
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            await conn.execute(
                "UPDATE audit_log SET body = convert_to("
                "replace(convert_from(body, 'UTF8'), 'Bergen', 'Borgen'), 'UTF8')"
                " WHERE kafka_partition = 0 AND chain_position = 2"
            )
            await conn.execute(
                "UPDATE audit_log SET payload = jsonb_set(payload, '{tenant}', '\"other\"')"
                " WHERE kafka_partition = 0 AND chain_position = 3"
            )
            await conn.execute(
                "DELETE FROM audit_log WHERE kafka_partition = 0 AND chain_position = 5"
            )
            await conn.execute(
                "DELETE FROM audit_log WHERE kafka_partition = 1 AND chain_position = 3"
            )
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
            report = await verify_log(conn)
    finally:
        await pool.close()

    found: dict[tuple[int | None, int | None, str | None], list[str]] = {}
    for p in report.problems:
        found.setdefault((p.partition, p.position, p.event_id), []).append(p.problem)
    assert set(found) == {
        (0, 2, by_position[(0, 2)]),
        (0, 3, by_position[(0, 3)]),
        (0, 6, by_position[(0, 6)]),
        (1, None, None),
    }
    # The changed body breaks the hash, and its payload column no longer matches it.
    assert any("does not match its hash" in p for p in found[(0, 2, by_position[(0, 2)])])
    assert found[(0, 3, by_position[(0, 3)])] == ["row changed: payload differs from its message"]
    assert found[(0, 6, by_position[(0, 6)])] == ["rows removed before this one (position 5)"]
    assert "rows removed at the end" in found[(1, None, None)][0]

    # The command runs its own event loop: off this test's loop, in a thread.
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["audit", "verify"], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 1
    assert by_position[(0, 2)] in result.output
    assert f"{len(report.problems)} problems" in result.output


async def test_concurrent_batches_of_one_partition_keep_one_unbroken_chain(
    database_url: str,
) -> None:
    batches = [entries("visma.changes", 0, 10, first_offset=10 * i) for i in range(8)]
    pool = await seeded_pool(database_url)
    try:
        recorder = Recorder(pool)
        # Every batch twice, all at once: each event lands once, each row links to its
        # predecessor.
        reports = await asyncio.gather(*(recorder.append(b) for b in batches + batches))
        async with pool.acquire() as conn:
            positions = [
                r["chain_position"]
                for r in await conn.fetch("SELECT chain_position FROM audit_log ORDER BY 1")
            ]
            report = await verify_log(conn)
    finally:
        await pool.close()
    assert sum(r.stored for r in reports) == 80
    assert positions == list(range(1, 81))
    assert report.ok, report.problems


SCHEMA_QUERIES = (
    """SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
       FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
       FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    """SELECT proname, pg_get_functiondef(oid) FROM pg_proc
       WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    "SELECT version FROM schema_migrations WHERE owner = 'audit-store' ORDER BY 1",
)


async def schema_of(conn: asyncpg.Connection) -> list[list[tuple[object, ...]]]:
    return [[tuple(r) for r in await conn.fetch(q)] for q in SCHEMA_QUERIES]


async def test_a_fresh_and_an_upgraded_database_end_in_the_same_schema(
    stack: Stack, database_url: str
) -> None:
    migrations = resources.files("audit_store").joinpath("migrations")
    first = sorted(f.name for f in migrations.iterdir() if f.name.endswith(".sql"))[0]
    await migrate(database_url)
    async with fresh_database(stack.database_url, "t") as upgraded_url:
        conn = await asyncpg.connect(upgraded_url)
        try:
            # The database as migration 1 left it, with rows in it, then upgraded.
            await conn.execute(migrations.joinpath(first).read_text())
            await conn.execute(MIGRATIONS_LEDGER)
            await conn.execute(
                "INSERT INTO schema_migrations (owner, version, checksum) VALUES ($1, $2, $3)",
                "audit-store",
                first.removesuffix(".sql"),
                hashlib.sha256(migrations.joinpath(first).read_bytes()).hexdigest(),
            )
            await append_as_before_007(conn, entries("visma.changes", 0, 3))
            assert await apply_migrations(conn, "audit_store", owner="audit-store")
            upgraded = await schema_of(conn)
            assert (await verify_log(conn)).ok
        finally:
            await conn.close()
    conn = await asyncpg.connect(database_url)
    try:
        fresh = await schema_of(conn)
    finally:
        await conn.close()
    assert fresh == upgraded

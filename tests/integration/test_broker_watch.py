"""visma-reader's broker watch on the real broker and database: a topic the broker lost (deleted
and created again, as on a production broker) is found by its missing epoch mark, and two
readers watching together recover once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from audit_support import fill_log, logged, read_records, result_for, supplier_change
from conftest import TopicNames

from mlconnector.audit.replay import ReplayPublisher, kafka_replay_publisher
from mlconnector.broker_epoch import EpochMarks
from mlconnector.contracts import Event, Outcome
from mlconnector.kafka import HEADER_REPLAY_OF, HEADER_REPLAY_REASON
from mlconnector.migrations import apply_migrations
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from visma_reader.broker_watch import BrokerWatch
from visma_reader.poll_gate import PollGate

pytestmark = pytest.mark.integration


def watch(kafka: KafkaSettings, database_url: str, pool: asyncpg.Pool, changes: str) -> BrokerWatch:
    def publisher() -> contextlib.AbstractAsyncContextManager[ReplayPublisher]:
        return kafka_replay_publisher(kafka, changes)

    async def nothing() -> None:
        return None

    return BrokerWatch(
        EpochMarks(kafka, [changes]),
        pool,
        database_url,
        PollGate(open_at_start=True),
        publisher,
        interval=3600,
        instance="test",
        recovered=nothing,
    )


@contextlib.asynccontextmanager
async def reader_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "visma_reader", owner="visma-reader")
        yield pool
    finally:
        await pool.close()


async def test_a_lost_topic_is_recovered_once_by_two_readers_watching_together(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes, results = topics[Topic.VISMA_CHANGES], topics[Topic.BASWARE_RESULTS]
    delivered = supplier_change("S1")
    pending = supplier_change("S2")
    placed: list[tuple[Event, str, int, int]] = [
        (delivered, changes, 0, 0),
        (pending, changes, 0, 1),
        (result_for(delivered, Outcome.DELIVERED), results, 0, 0),
    ]
    await fill_log(database_url, logged(placed))
    async with reader_pool(database_url) as pool:
        first, second = (watch(kafka_settings, database_url, pool, changes) for _ in range(2))
        # A database's first look marks the broker; what is pending goes out again.
        started = await first.check()
        assert started is not None
        assert started.republished == 1
        assert await second.check() is None  # the same broker, marked: nothing to do

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([changes])
            await admin.create_topics(
                [NewTopic(changes, num_partitions=kafka_settings.partitions, replication_factor=1)]
            )
        finally:
            await admin.close()

        reports = await asyncio.gather(first.check(), second.check())
        assert sorted(r is None for r in reports) == [False, True]  # one recovery, not two
        epochs = await pool.fetch("SELECT lost_topics, republished FROM visma_broker_epoch")
    assert [(list(e["lost_topics"]), e["republished"]) for e in epochs] == [
        ([changes], 1),
        ([changes], 1),
    ]
    # The recreated topic holds the second replay of the pending change, saying why.
    (replayed,) = await read_records(kafka_settings, changes, 1)
    headers = {k: v.decode() for k, v in replayed.headers}
    assert headers[HEADER_REPLAY_OF] == pending.event_id
    assert headers[HEADER_REPLAY_REASON] == "broker lost"

"""Two connections side by side: each Visma company lands in its own Basware region, and no
secret of either shows up in the logs, on any topic or in the audit store."""

from __future__ import annotations

import logging

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from conftest import TopicNames
from pipeline_support import covers, latest_results, pipeline, read_events, until_logged
from sandbox_support import (
    BASWARE_CLIENT,
    BASWARE_US_CLIENT,
    SANDBOX_BASWARE_SECRET,
    SANDBOX_VISMA_SECRET,
    sandbox_connection,
    sandboxes,
    seeded_records,
    vendors,
)

from mlconnector.connections import Connection
from mlconnector.contracts import Outcome
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from visma_sandbox.config import DEMO_CLIENT_SECRET, SeedOptions

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=2, suppliers=5, purchase_orders=3, invoices=3)
SECOND_COMPANY = "1000002"


def secrets_of(*connections: Connection) -> set[str]:
    found = {DEMO_CLIENT_SECRET, SANDBOX_BASWARE_SECRET, SANDBOX_VISMA_SECRET}
    for connection in connections:
        found.add(connection.basware.client_secret.get_secret_value())
        found.add(connection.visma.client_secret.get_secret_value())
        for webhook in (connection.basware_webhook_secret, connection.visma_webhook_secret):
            if webhook is not None:
                found.add(webhook.get_secret_value())
    return found


async def audit_rows(database_url: str) -> list[bytes]:
    """Every row of the audit log as bytes: key, headers, body and derived columns."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT * FROM audit_log")
    finally:
        await conn.close()
    return [
        value if isinstance(value, bytes) else str(value).encode()
        for row in rows
        for value in row.values()
    ]


async def raw_messages(kafka: KafkaSettings, topics: list[str]) -> list[bytes]:
    """Every message of the topics as bytes: key, header values and body."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[bytes] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for m in messages:
                    found += [m.key or b"", m.value or b"", *(v for _, v in m.headers)]
        return found
    finally:
        await consumer.stop()


async def test_two_connections_sync_side_by_side_into_their_own_regions(
    kafka_settings: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sandboxes(seed=SEED) as (basware, visma):
        europe = sandbox_connection(basware, visma)
        america = sandbox_connection(
            basware, visma, visma_company=SECOND_COMPANY, basware_client=BASWARE_US_CLIENT
        )
        expected = seeded_records(visma) | seeded_records(visma, SECOND_COMPANY)
        async with pipeline(kafka_settings, database_url, topics, europe, america):
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected)
            )
            await until_logged(database_url, {e.event_id for e in events})

    results = latest_results(events)
    assert {r.outcome for r in results.values()} == {Outcome.DELIVERED}
    assert {r.region for r in results.values() if r.tenant == europe.tenant} == {"EU"}
    assert {r.region for r in results.values() if r.tenant == america.tenant} == {"US"}
    eu_vendors, us_vendors = vendors(basware, BASWARE_CLIENT), vendors(basware, BASWARE_US_CLIENT)
    assert len(eu_vendors) == len(us_vendors) == SEED.suppliers
    assert {c["companyCode"] for v in us_vendors.values() for c in v["companies"]} == {"US01"}
    assert {c["companyCode"] for v in eu_vendors.values() for c in v["companies"]} == {"BW00"}

    # No secret in any log line, any message of any topic or any row of the audit log.
    messages = await raw_messages(kafka_settings, topics.all())
    rows = await audit_rows(database_url)
    assert messages
    assert rows
    for secret in secrets_of(europe, america):
        assert not [r for r in caplog.records if secret in r.getMessage()], secret
        assert not [m for m in messages if secret.encode() in m], secret
        assert not [v for v in rows if secret.encode() in v], secret

"""The stack launcher brings up a real broker and database, and the testcontainers path exists."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from mlconnector.topics import ALL_TOPICS
from mlconnector_cli.stack import Stack, docker_available, local_stack

pytestmark = pytest.mark.integration


async def test_topics_exist_with_configured_partitions(stack: Stack) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(list(ALL_TOPICS))
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    assert partitions == {topic.value: stack.partitions for topic in ALL_TOPICS}


async def test_same_key_lands_on_same_partition(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    await producer.start()
    try:
        first = await producer.send_and_wait("visma.changes", b"a", key=b"tenant:50012")
        second = await producer.send_and_wait("visma.changes", b"b", key=b"tenant:50012")
    finally:
        await producer.stop()
    assert first.partition == second.partition
    assert second.offset > first.offset


async def test_database_is_a_real_postgresql(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        version = await conn.fetchval("SHOW server_version")
        assert int(str(version).split(".")[0]) >= 14
    finally:
        await conn.close()


async def test_embedded_broker_is_stopped_when_the_stack_exits() -> None:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: this run starts no broker of its own")
    async with local_stack(purpose="exit") as running:
        host, port = running.bootstrap_servers.split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))


@pytest.mark.docker
async def test_testcontainers_stack_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    if not docker_available():
        pytest.skip("no Docker engine on this machine: the testcontainers path is not exercised")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MLC_STACK", "testcontainers")
    async with local_stack(purpose="tc") as running:
        assert running.broker_origin == "testcontainers"
        producer = AIOKafkaProducer(bootstrap_servers=running.bootstrap_servers)
        await producer.start()
        try:
            sent = await producer.send_and_wait("visma.changes", uuid.uuid4().bytes)
        finally:
            await producer.stop()
        assert sent.offset >= 0
        conn = await asyncpg.connect(running.database_url)
        await conn.close()

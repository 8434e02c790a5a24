"""Failover of visma-reader (issue 21, item 5): three reader processes share fifty connections
(small ledgers, a Basware customer each) through their leases; one is killed with SIGKILL.
Its connections are taken over once their leases expired and polled again; no company is ever
polled by two readers at once (the Visma sandbox's request log: the calls made with one token,
that is by one reader's tenure, never interleave with another token's); and every record, the
ones changed after the kill too, is in Basware once.

Slow (about a minute): three processes, fifty backfills and a lease timeout to wait out."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import pairwise
from pathlib import Path

import asyncpg
import pytest
from conftest import TopicNames
from pipeline_support import covers, read_events
from sandbox_support import sandbox_connection, sandboxes, seeded_records, vendors

from basware_sandbox import BaswareSandbox, tenant_clients
from basware_writer.app import create_app as create_writer
from basware_writer.settings import WriterSettings
from mlconnector.asgi import serve_asgi
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.migrations import apply_migrations
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring, MasterKey, generate_key
from visma_sandbox.config import SeedOptions
from visma_sandbox.runner import RunningSandbox

pytestmark = pytest.mark.integration

COMPANIES = 50
READERS = 3
SEED = SeedOptions(companies=COMPANIES, suppliers=2, purchase_orders=0, invoices=1)
LEASE_SECONDS = 4.0
POLL_SECONDS = 1.0
RENAMED = "Omdøpt etter failover AS"


def company_ids() -> list[str]:
    return [str(1_000_001 + n) for n in range(COMPANIES)]


def reader_environment(
    kafka: KafkaSettings, database_url: str, topics: TopicNames, master_key: str
) -> dict[str, str]:
    """`visma-reader` as deployed: the connections from the store, everything else from the
    environment."""
    return {
        "VISMA_READER_LEASE_SECONDS": str(LEASE_SECONDS),
        "VISMA_READER_POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
        "VISMA_READER_CONNECTIONS_REFRESH_SECONDS": "2",
        "VISMA_READER_CHANGES_TOPIC": topics[Topic.VISMA_CHANGES],
        "VISMA_READER_NOTIFICATIONS_TOPIC": topics[Topic.VISMA_NOTIFICATIONS],
        "VISMA_READER_RESULTS_TOPIC": topics[Topic.BASWARE_RESULTS],
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
        "DATABASE_URL": database_url,
        "MLC_HTTP_PORT": "0",
        "MLC_MASTER_KEY": master_key,
        "PATH": "/usr/bin:/bin",
    }


@contextlib.asynccontextmanager
async def reader_processes(
    environment: dict[str, str], folder: Path
) -> AsyncIterator[dict[str, asyncio.subprocess.Process]]:
    """READERS `visma-reader` processes by their lease holder name; those still running at
    the end get SIGTERM (a clean stop)."""
    running: dict[str, asyncio.subprocess.Process] = {}
    logs = [(folder / f"reader-{n}.log").open("wb") for n in range(READERS)]
    try:
        for log in logs:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "visma_reader", env=environment, stdout=log, stderr=log
            )
            running[f"{socket.gethostname()}-{process.pid}"] = process
        yield running
    finally:
        for process in running.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in running.values():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        for log in logs:
            log.close()


async def lease_holders(database_url: str) -> dict[str, str]:
    """Connection -> the reader holding its lease now (expired ones left out)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT connection, holder FROM visma_connection_lease"
            " WHERE holder IS NOT NULL AND expires_at > now()"
        )
    finally:
        await conn.close()
    return {row["connection"]: row["holder"] for row in rows}


async def until(done: Callable[[], Awaitable[bool]], what: str) -> None:
    # A guard against a hang, not a timed assertion.
    async with asyncio.timeout(120):
        while not await done():
            await asyncio.sleep(0.2)


def tenures(visma: RunningSandbox, company: str) -> list[tuple[float, float]]:
    """(first, last) arrival of the list calls (poll cycles) made with each token of the
    company, by first; the writer's calls (invoice PDFs) have tokens of their own."""
    spans: dict[str, list[float]] = {}
    for entry in visma.state.log.entries(company_id=company):
        if entry.route.endswith(".list") and entry.token_id is not None:
            spans.setdefault(entry.token_id, []).append(entry.at)
    return sorted((min(ats), max(ats)) for ats in spans.values())


def renamed_everywhere(basware: BaswareSandbox, expected: dict[str, int]) -> bool:
    for n, client in enumerate(tenant_clients(COMPANIES)):
        names = [v.get("name") for v in vendors(basware, client).values()]
        if names.count(RENAMED) != expected[company_ids()[n]]:
            return False
    return True


async def test_a_killed_reader_is_taken_over_without_overlap_loss_or_duplicate(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    master_key = generate_key()
    async with sandboxes(seed=SEED, tenants=COMPANIES) as (basware, visma):
        connections: list[Connection] = [
            sandbox_connection(basware, visma, visma_company=company, basware_client=client)
            for company, client in zip(company_ids(), tenant_clients(COMPANIES), strict=True)
        ]
        async with ConnectionStore.open(
            database_url, Keyring(MasterKey.from_base64(master_key))
        ) as store:
            for connection in connections:
                await store.add(connection)
        conn = await asyncpg.connect(database_url)
        try:
            await apply_migrations(conn, "visma_reader", owner="visma-reader")
        finally:
            await conn.close()
        writer = create_writer(
            kafka_settings,
            DatabaseSettings(database_url=database_url),
            WriterSettings(batch_timeout_ms=50, backoff_base_seconds=0.01),
            connections=StaticConnectionSource(connections),
            changes_topic=topics[Topic.VISMA_CHANGES],
            results_topic=topics[Topic.BASWARE_RESULTS],
        )
        environment = reader_environment(kafka_settings, database_url, topics, master_key)
        expected = set().union(*(seeded_records(visma, c) for c in company_ids()))
        async with serve_asgi(writer), reader_processes(environment, tmp_path) as readers:

            async def balanced() -> bool:
                held = Counter((await lease_holders(database_url)).values())
                share = -(-COMPANIES // READERS)
                return (
                    sum(held.values()) == COMPANIES
                    and len(held) == READERS
                    and all(n <= share for n in held.values())
                )

            await until(balanced, "three readers holding their shares")
            await read_events(kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected))

            holders = await lease_holders(database_url)
            victim = Counter(holders.values()).most_common(1)[0][0]
            orphans = {name for name, holder in holders.items() if holder == victim}
            killed_at = time.time()
            readers[victim].send_signal(signal.SIGKILL)
            await readers[victim].wait()

            async def taken_over() -> bool:
                held = await lease_holders(database_url)
                return len(held) == COMPANIES and victim not in held.values()

            await until(taken_over, "the killed reader's leases taken over")
            orphaned = [c.tenant for c in connections if c.name in orphans]

            async def polled_again() -> bool:
                return all(tenures(visma, c)[-1][0] > killed_at for c in orphaned)

            await until(polled_again, "the killed reader's companies polled again")
            takeover = max(tenures(visma, c)[-1][0] - killed_at for c in orphaned)

            # Changed after the kill: every company's suppliers get a new name.
            suppliers = {c: 0 for c in company_ids()}
            for company in company_ids():
                state = visma.state.company(company)
                for stored in state.table("supplier"):
                    state.update(
                        "supplier",
                        state.table("supplier").spec.key_text(stored.key),
                        {"name": RENAMED},
                    )
                    suppliers[company] += 1

            async def renamed() -> bool:
                return renamed_everywhere(basware, suppliers)

            await until(renamed, "the renamed suppliers in Basware")

        for company in company_ids():
            spans = tenures(visma, company)
            for (_, last), (first, _) in pairwise(spans):
                assert first > last, (company, spans)
        # Each record once in Basware: every supplier one vendor, every invoice one document.
        for company, client in zip(company_ids(), tenant_clients(COMPANIES), strict=True):
            assert len(vendors(basware, client)) == suppliers[company]
        documents = Counter(
            (tenant.bwcid, document.document.invoice_number)
            for tenant in basware.state.tenants.values()
            for document in tenant.documents.values()
        )
        assert len(documents) == COMPANIES * SEED.invoices
        assert set(documents.values()) == {1}, documents
        print(f"killed reader held {len(orphans)} connections; polled again after {takeover:.1f} s")

"""Many companies on the readers (issue 21, item 4, the reader half): N Visma companies with
small ledgers, one connection each in the connection store (each paired with a Basware
customer of its own, `basware_sandbox.tenant_clients`, which the readers never call), polled
by one and then by two `visma-reader` processes sharing them through their leases.

Figures per reader count: the time from the readers' launch until every company's first
backfill is done (each company's supplier-invoice cursor, the last stream of a cycle, is
stored), then over two poll intervals: poll cycles per second (the sandbox's count of
supplier-invoice lists: one page each), CPU milliseconds per cycle and the readers' share of
one core (psutil), the Visma sandbox's share (it runs on the same cores), the readers' RSS,
and the database connections open on the run's database.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
import psutil
from pydantic import SecretStr

from basware_sandbox import tenant_clients
from bench.backdoors import VismaBackdoor
from bench.report import Figure, Record, Target
from bench.sizes import BenchSize, ScenarioContext
from mlconnector.asgi import free_port
from mlconnector.basware import BaswareCredentials
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection
from mlconnector.migrations import apply_migrations
from mlconnector.vault import Keyring, MasterKey, generate_key
from mlconnector.visma import READ_SCOPE, VismaCredentials, VismaEndpoints
from mlconnector_cli.processes import ManagedProcess
from mlconnector_cli.run import wait_until_up
from mlconnector_cli.stack import Stack, fresh_database, local_stack
from visma_sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, CompanyInfo

# A small ledger per company: a cycle reads one page of each stream.
LEDGER = {"suppliers": 2, "purchase_orders": 1, "invoices": 1}
# Visma's hourly quota is per company (docs/visma-net.md §8.1); lifted, as in bench/pipeline.py.
UNLIMITED_QUOTA = 1_000_000_000
# The aim of issue 21: a thousand companies on one reader at 30 s under half of one core.
MAX_CORE_SHARE = 50.0
CYCLE_ROUTE = "supplierinvoice.list"
SEEDING_TIMEOUT = 600.0
BACKFILL_TIMEOUT = 1800.0


def bin_path(command: str) -> str:
    return str(Path(sys.executable).parent / command)


def connections(count: int, visma_url: str, connect_url: str) -> list[Connection]:
    endpoints = VismaEndpoints(
        token_url=f"{connect_url}/connect/token", api_base_url=f"{visma_url}/v1/"
    )
    return [
        Connection(
            name=f"company-{1_000_000 + n}",
            visma=VismaCredentials(
                client_id=DEMO_CLIENT_ID,
                client_secret=SecretStr(DEMO_CLIENT_SECRET),
                tenant_id=tenant_id,
                company_id=str(1_000_000 + n),
                scopes=(READ_SCOPE,),
            ),
            visma_endpoints=endpoints,
            basware=BaswareCredentials(
                client_id=client.client_id,
                client_secret=SecretStr(client.client_secret.get_secret_value()),
            ),
        )
        for n, (tenant_id, client) in enumerate(
            zip(tenant_ids(count), tenant_clients(count), strict=True), start=1
        )
    ]


def tenant_ids(count: int) -> list[str]:
    return [CompanyInfo.demo(n).tenant_id for n in range(1, count + 1)]


async def cycles(visma: VismaBackdoor) -> int:
    counters = await visma.counters()
    return sum(n for key, n in counters.items() if key.endswith(f" {CYCLE_ROUTE}"))


def cpu_seconds(pids: list[int]) -> float:
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


async def many_companies(
    stack: Stack, companies: int, readers: int, interval: float, log_dir: Path
) -> list[Figure]:
    port, connect_port = free_port(), free_port()
    visma_url, connect_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{connect_port}"
    sandbox = ManagedProcess(
        "visma-sandbox",
        [
            bin_path("visma-sandbox"),
            *("--port", str(port), "--connect-port", str(connect_port)),
            *("--companies", str(companies), "--rate-limit", str(UNLIMITED_QUOTA)),
            *("--suppliers", str(LEDGER["suppliers"])),
            *("--purchase-orders", str(LEDGER["purchase_orders"])),
            *("--invoices", str(LEDGER["invoices"])),
        ],
        env={},
        log_dir=log_dir,
    )
    master_key = generate_key()
    reader_processes: list[ManagedProcess] = []
    async with fresh_database(stack.database_url, "bench_tenants") as url:
        try:
            await sandbox.start()
            await wait_until_up(f"{visma_url}/_sandbox/companies", [sandbox], SEEDING_TIMEOUT)
            async with ConnectionStore.open(
                url, Keyring(MasterKey.from_base64(master_key))
            ) as store:
                for connection in connections(companies, visma_url, connect_url):
                    await store.add(connection)
            conn = await asyncpg.connect(url)
            try:
                await apply_migrations(conn, "visma_reader", owner="visma-reader")
            finally:
                await conn.close()
            for n in range(readers):
                reader_processes.append(
                    ManagedProcess(
                        f"visma-reader-{n + 1}",
                        [sys.executable, "-m", "visma_reader"],
                        env={
                            **stack.environment(),
                            "DATABASE_URL": url,
                            "MLC_MASTER_KEY": master_key,
                            "MLC_HTTP_PORT": str(free_port()),
                            "VISMA_READER_POLL_INTERVAL_SECONDS": str(interval),
                        },
                        log_dir=log_dir,
                    )
                )
            started = time.monotonic()
            for process in reader_processes:
                await process.start()
            conn = await asyncpg.connect(url)
            try:
                backfill = await until_backfilled(conn, companies, reader_processes, started)
                async with VismaBackdoor(visma_url) as visma:
                    pids = [p.pid for p in reader_processes if p.pid is not None]
                    assert sandbox.pid is not None
                    sandbox0 = cpu_seconds([sandbox.pid])
                    cpu0, cycles0, at0 = cpu_seconds(pids), await cycles(visma), time.monotonic()
                    await asyncio.sleep(2 * interval)
                    cpu1, cycles1, at1 = cpu_seconds(pids), await cycles(visma), time.monotonic()
                    sandbox1 = cpu_seconds([sandbox.pid])
                    load = os.getloadavg()[0]
                    calls = sum((await visma.counters()).values())
                rss = max(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20
                in_use = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            finally:
                await conn.close()
        finally:
            await asyncio.gather(*(p.stop(grace=5) for p in [*reader_processes, sandbox]))
    polled = cycles1 - cycles0
    seconds = at1 - at0
    core_share = 100 * (cpu1 - cpu0) / seconds
    source = f"{readers} visma-reader process(es), {companies} companies at {interval:g} s"
    return [
        Figure(name="first backfill of every company", value=backfill, unit="s", source=source),
        Figure(name="poll cycles per second", value=polled / seconds, unit="/s", source=source),
        Figure(
            name="CPU per poll cycle",
            value=1000 * (cpu1 - cpu0) / polled if polled else None,
            unit="ms",
            source="psutil user+system of the readers / the sandbox's supplier-invoice lists",
        ),
        Figure(
            name="readers' CPU, share of one core",
            value=core_share,
            unit="%",
            source=source,
            target=Target(op="<", value=MAX_CORE_SHARE) if readers == 1 else None,
        ),
        Figure(
            name="Visma sandbox's CPU, share of one core",
            value=100 * (sandbox1 - sandbox0) / seconds,
            unit="%",
            source="psutil: near 100 %, the sandbox is what limits the cycles",
        ),
        Figure(
            name="load average (1 min) at the end",
            value=load,
            unit="",
            source="os.getloadavg: the machine's cores are shared with other work",
        ),
        Figure(name="RSS of the largest reader", value=rss, unit="MB", source="psutil"),
        Figure(
            name="database connections in use",
            value=float(in_use),
            unit="",
            source="pg_stat_activity of the run's database",
        ),
        Figure(name="Visma calls in all", value=float(calls), unit="", source="sandbox counters"),
    ]


async def until_backfilled(
    conn: asyncpg.Connection, companies: int, processes: list[ManagedProcess], started: float
) -> float:
    """Seconds from `started` until every company's supplier-invoice cursor is stored."""
    async with asyncio.timeout(BACKFILL_TIMEOUT):
        return await _backfilled(conn, companies, processes, started)


async def _backfilled(
    conn: asyncpg.Connection, companies: int, processes: list[ManagedProcess], started: float
) -> float:
    while True:
        for process in processes:
            if process.exited is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        done = await conn.fetchval(
            "SELECT count(*) FROM visma_poll_cursor WHERE entity = 'supplier_invoice'"
        )
        if done >= companies:
            return time.monotonic() - started
        await asyncio.sleep(0.5)


async def tenants(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    async with local_stack(purpose="bench") as stack:
        for readers in (1, 2):
            (context.log_dir / f"{readers}-readers").mkdir(parents=True, exist_ok=True)
            figures = await many_companies(
                stack,
                size.tenants,
                readers,
                size.tenant_poll_interval,
                context.log_dir / f"{readers}-readers",
            )
            record(f"tenants, {readers} reader{'s' if readers > 1 else ''}", figures)

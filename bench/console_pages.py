"""The console's answer times over a large audit log: Records and Overview, p50 and p95.

Fills a fresh database's audit log with N rows through audit-store's own recorder (a change
and a result per record, one record in ten changed again and rejected), starts the console
on it, logs in, waits for the first sample of the sync, then times the Records page (its
default listing, the rejected ones, one Visma id) and the Overview (page and JSON).

    .venv/bin/python -m bench.console_pages --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from pydantic import BaseModel, SecretStr

from audit_store.lifecycle import migrate
from audit_store.recorder import Recorder
from bench.report import Figure, Record, Target
from bench.sizes import BenchSize, ScenarioContext
from console.access import Role
from console.app import create_app
from console.settings import ConsoleSettings
from console.users import add_user
from console.users import migrate as migrate_console
from mlconnector.asgi import serve_asgi
from mlconnector.audit.rows import LogEntry, ReceivedMessage, log_entry
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.vault import Keyring, MasterKey
from mlconnector_cli.stack import fresh_database, local_stack

TENANT = "1000001"
PARTITIONS = 12
BATCH = 5000
REQUESTS = 20
# A page slower than this is timed fewer times: its p95 is then the slowest of those few.
SLOW_SECONDS = 5.0
SLOW_REQUESTS = 3
ADMIN, PASSWORD = "bench", "bench-password"
TARGET_P95_MS = 300.0
PAGES = {
    "Records page": "/records",
    "Records page, rejected": "/records?states=rejected",
    "Records page, one Visma id": "/records?visma_id=60007",
    "Overview page": "/overview",
    "Overview JSON": "/api/overview",
}


def _message(topic: str, n: int, event_type: str, body: Mapping[str, object]) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        topic=topic,
        partition=n % PARTITIONS,
        offset=n // PARTITIONS,
        key=f"{TENANT}:{body['entity_id']}".encode(),
        headers=(("event-id", str(body["event_id"]).encode()), ("event-type", event_type.encode())),
        value=json.dumps(body).encode(),
        kafka_time=now,
        arrived_at=now,
    )


def log_rows(rows: int) -> Iterator[LogEntry]:
    """About `rows` rows: per record a change and its result; every tenth record a second
    change, rejected by Basware's validation."""
    start = datetime.now(UTC) - timedelta(hours=12)
    n = 0
    record = 0
    while n < rows:
        record += 1
        entity_id = str(50_000 + record)
        versions = 2 if record % 10 == 0 else 1
        for version in range(versions):
            at = (start + timedelta(seconds=record / 50 + version)).isoformat()
            change_id = str(uuid.uuid4())
            change = {
                "event_id": change_id,
                "tenant": TENANT,
                "entity": "supplier",
                "entity_id": entity_id,
                "supplier_number": entity_id,
                "content_hash": uuid.uuid4().hex,
                "occurred_at": at,
            }
            rejected = version == 1
            result = {
                "event_id": str(uuid.uuid4()),
                "tenant": TENANT,
                "entity": "supplier",
                "entity_id": entity_id,
                "change_event_id": change_id,
                "outcome": "rejected" if rejected else "delivered",
                "reasons": [{"category": "Validation", "field": "name", "message": "too long"}]
                if rejected
                else [],
                "attempts": 1,
                "occurred_at": at,
            }
            yield log_entry(_message("visma.changes", n, "SupplierChanged", change))
            yield log_entry(_message("basware.results", n + 1, "DeliveryResult", result))
            n += 2


class PageTimes(BaseModel):
    name: str
    p50_ms: float
    p95_ms: float


async def fill(database_url: str, rows: int) -> float:
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    started = time.perf_counter()
    try:
        recorder = Recorder(pool)
        batch: list[LogEntry] = []
        for entry in log_rows(rows):
            batch.append(entry)
            if len(batch) == BATCH:
                await recorder.append(batch)
                batch = []
        if batch:
            await recorder.append(batch)
    finally:
        await pool.close()
    return time.perf_counter() - started


async def time_pages(database_url: str, kafka: KafkaSettings) -> list[PageTimes]:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate_console(conn)
        await add_user(conn, ADMIN, Role.ADMIN, SecretStr(PASSWORD))
    finally:
        await conn.close()
    app = create_app(
        ConsoleSettings(secure_cookies=False, services=[]),
        kafka,
        DatabaseSettings(database_url=database_url),
        Keyring(MasterKey.from_bytes(bytes(32))),
    )
    async with serve_asgi(app) as url, httpx.AsyncClient(base_url=url, timeout=900) as http:
        login = await http.post("/api/session", json={"name": ADMIN, "password": PASSWORD})
        login.raise_for_status()
        # The Overview answers from the sampler's latest sample: wait for the first.
        deadline = time.monotonic() + 600
        while (await http.get("/api/overview")).json()["taken_at"] is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the console took no sample within 600 s")
            await asyncio.sleep(0.5)
        times: list[PageTimes] = []
        for name, path in PAGES.items():
            seconds: list[float] = []
            while len(seconds) < (
                SLOW_REQUESTS if max(seconds, default=0) > SLOW_SECONDS else REQUESTS
            ):
                started = time.perf_counter()
                answer = await http.get(path)
                seconds.append(time.perf_counter() - started)
                answer.raise_for_status()
            cuts = statistics.quantiles(seconds, n=20, method="inclusive")
            times.append(
                PageTimes(
                    name=name, p50_ms=statistics.median(seconds) * 1000, p95_ms=cuts[18] * 1000
                )
            )
        return times


async def console_pages(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    """The bench run: a fresh database on the local stack, filled, then timed."""
    async with (
        local_stack(purpose="bench") as stack,
        fresh_database(stack.database_url, "bench_console") as url,
    ):
        filled = await fill(url, size.console_audit_rows)
        times = await time_pages(url, stack.kafka_settings())
    source = f"console over {size.console_audit_rows:,} audit rows, {REQUESTS} requests each"
    figures = [Figure(name="audit rows written (recorder)", value=filled, unit="s", source=source)]
    for page in times:
        figures.append(Figure(name=f"{page.name} p50", value=page.p50_ms, unit="ms", source=source))
        figures.append(
            Figure(
                name=f"{page.name} p95",
                value=page.p95_ms,
                unit="ms",
                source=source,
                target=Target(op="<", value=TARGET_P95_MS),
            )
        )
    record("console", figures)


async def _main(rows: int) -> None:
    async with (
        local_stack(purpose="bench") as stack,
        fresh_database(stack.database_url, "bench_console") as url,
    ):
        print(f"filled {rows} rows in {await fill(url, rows):.1f} s", flush=True)
        for page in await time_pages(url, stack.kafka_settings()):
            print(f"{page.name:<28} p50 {page.p50_ms:8.1f} ms   p95 {page.p95_ms:8.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    asyncio.run(_main(parser.parse_args().rows))

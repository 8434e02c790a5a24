"""A backfill bound by Visma's quota, with the window compressed to seconds: the pipeline
spends each window's bulk share and parks the rest (docs/visma-net.md §8.3), a live change
made meanwhile reaches Basware in the window it was made in, and Visma never answers 429."""

from __future__ import annotations

import asyncio
import math
import uuid

import asyncpg
import pytest
from conftest import TopicNames
from pipeline_support import covers, latest_results, pipeline, read_events
from sandbox_support import VISMA_COMPANY, sandbox_connection, sandboxes, seeded_records

from basware_writer.settings import WriterSettings
from mlconnector.connections import ALL_ENTITIES
from mlconnector.contracts import REFERENCE_ENTITIES, Entity, Outcome
from mlconnector.schedule import IntervalSchedule
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector.visma.quota_plan import read_quota_plans
from visma_reader.settings import ReaderSettings
from visma_sandbox.config import SeedOptions
from visma_sandbox.requestlog import quota_windows

pytestmark = pytest.mark.integration

WINDOW_SECONDS = 15.0
LIMIT = 40
RESERVE = 0.5  # 20 calls a window for bulk work, 20 kept for live work
INVOICES = 45  # one attachment each: three windows' bulk share
POLL_SECONDS = 3.0


async def until_bulk_spent(database_url: str) -> None:
    """Until the company's plan says its bulk share is spent; the guard only stops a hang."""
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(120):
            while True:
                plans = await read_quota_plans(conn)
                if any(p.bulk_spent for p in plans):
                    return
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def test_a_quota_bound_backfill_uses_each_window_and_live_changes_go_meanwhile(
    kafka_settings: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VISMA_QUOTA_RESERVE", str(RESERVE))
    monkeypatch.setenv("VISMA_QUOTA_WINDOW_SECONDS", str(WINDOW_SECONDS))
    seed = SeedOptions(companies=1, suppliers=5, purchase_orders=0, invoices=INVOICES)
    async with sandboxes(seed=seed) as (basware, visma):
        visma.state.settings.rate_limit = LIMIT
        visma.state.settings.rate_limit_window_seconds = WINDOW_SECONDS
        # Reference data is read once; suppliers and invoices every poll interval.
        entities = tuple(e for e in ALL_ENTITIES if e is not Entity.PURCHASE_ORDER)
        rarely = IntervalSchedule(seconds=3600)
        connection = sandbox_connection(basware, visma).model_copy(
            update={
                "entities": entities,
                "schedules": {e: rarely for e in REFERENCE_ENTITIES},
            }
        )
        backfill = seeded_records(visma)
        company = visma.state.company(VISMA_COMPANY)
        async with pipeline(
            kafka_settings,
            database_url,
            topics,
            connection,
            reader_settings=ReaderSettings(
                poll_interval_seconds=POLL_SECONDS, page_size=1000, full_scan_interval_seconds=0
            ),
            writer_settings=WriterSettings(
                batch_timeout_ms=50, backoff_base_seconds=0.01, follow_up_interval_seconds=0.5
            ),
        ):
            await until_bulk_spent(database_url)
            # A live change while the backfill waits for the next window: a new invoice.
            template = next(iter(company.table("supplierinvoice"))).record
            body = template.model_dump(by_alias=True, exclude_none=True)
            attachment = str(uuid.uuid4())
            body.update(
                referenceNumber="LIVE-1",
                supplierReference="LIVE-1",
                attachments=[{"name": "LIVE-1.pdf", "id": attachment}],
            )
            made_at = visma.state.log.last_seq
            company.put("supplierinvoice", body)
            live = (VISMA_COMPANY, Entity.SUPPLIER_INVOICE, "Invoice/LIVE-1")
            events = await read_events(
                kafka_settings,
                topics[Topic.BASWARE_RESULTS],
                covers(backfill | {live}),
                timeout_seconds=6 * WINDOW_SECONDS,
            )

    results = latest_results(events)
    assert {r.outcome for r in results.values()} == {Outcome.DELIVERED}, [
        (r.entity_id, r.reasons) for r in results.values() if r.outcome != Outcome.DELIVERED
    ]
    calls = visma.state.log.entries(company_id=VISMA_COMPANY)
    assert [c for c in calls if c.status == 429] == []
    downloads = [c for c in calls if c.route == "attachment.get"]
    assert len(downloads) == INVOICES + 1
    # The live invoice's attachment was fetched in the window it was made in: it did not
    # wait for the backfill's next window.
    windows = quota_windows(calls)
    made_in = next(i for i, w in enumerate(windows) if any(c.seq > made_at for c in w))
    (fetched_in,) = [i for i, w in enumerate(windows) if any(attachment in c.path for c in w)]
    assert fetched_in == made_in
    # Each window the backfill waited for was spent to its live reserve, and no more
    # windows were needed than its downloads take at the bulk share.
    with_downloads = [w for w in windows if any(c.route == "attachment.get" for c in w)]
    for window in with_downloads[:-1]:
        assert min(c.rate_limit_remaining or 0 for c in window) <= LIMIT * RESERVE
    assert len(with_downloads) <= math.ceil(INVOICES / (LIMIT * (1 - RESERVE))) + 1

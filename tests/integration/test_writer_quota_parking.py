"""Uploads parked for Visma's quota in PostgreSQL (writer migration 008): nobody takes one
before its window resets, any writer takes it after, and a later version of the invoice
takes the place of one still waiting, answering for its changes too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from writer_support import invoice

from basware_writer.domain import UploadIntent
from basware_writer.stores import WriterStores
from mlconnector.contracts import ChangeEvent
from mlconnector.migrations import apply_migrations

pytestmark = pytest.mark.integration

TENANT = "1000001"
TIMEOUT = 30.0


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "basware_writer", owner="basware-writer")
    try:
        yield pool
    finally:
        await pool.close()


def intent(change: ChangeEvent, payload_hash: str) -> UploadIntent:
    return UploadIntent(
        changes=(change,),
        payload_hash=payload_hash,
        invoice_number=change.entity_id,
        invoice_date=date(2026, 10, 20),
    )


@pytest.fixture
async def writers(pool: asyncpg.Pool) -> AsyncIterator[tuple[WriterStores, WriterStores]]:
    """Two live writers; each holds a connection of the pool for its presence lock until it
    leaves, so they leave before the pool closes."""
    first, second = WriterStores.of(pool, "writer-1"), WriterStores.of(pool, "writer-2")
    await first.instances.beat()
    await second.instances.beat()
    try:
        yield first, second
    finally:
        await first.instances.leave()
        await second.instances.leave()


async def test_a_parked_upload_waits_for_its_window_then_any_writer_takes_it(
    pool: asyncpg.Pool, writers: tuple[WriterStores, WriterStores]
) -> None:
    first, second = writers
    waiting = intent(invoice(TENANT, "INV1", "S1", "PO1"), "v1")
    claimed, _ = await first.uploads.claim_new(TENANT, [waiting], first.owner)
    assert claimed == [waiting]
    soon = datetime.now(UTC) + timedelta(seconds=2)
    await first.uploads.wait_for_quota(TENANT, [(waiting, soon)], first.owner)
    # Neither the lost-answer lookups nor the quota's resumption take it before the reset.
    assert await second.uploads.claim_unconfirmed(second.owner, TIMEOUT, 10, 0, 10) == {}
    assert await second.uploads.claim_quota_due(second.owner, TIMEOUT, 10) == {}
    assert (await first.uploads.quota_waits())[TENANT][0] == 1
    await pool.execute("UPDATE writer_uploads SET quota_until = now() - interval '1 second'")
    due = await second.uploads.claim_quota_due(second.owner, TIMEOUT, 10)
    assert [(i.change.entity_id, i.quota_until is not None) for i in due[TENANT]] == [
        ("Invoice/INV1", True)
    ]
    # Once its PDF is being sent it is an upload like any other.
    await second.uploads.sending(TENANT, waiting)
    assert await first.uploads.quota_waits() == {}


async def test_a_later_version_takes_the_place_of_one_waiting_for_the_quota(
    pool: asyncpg.Pool, writers: tuple[WriterStores, WriterStores]
) -> None:
    first, second = writers
    earlier_change = invoice(TENANT, "INV1", "S1", "PO1")
    earlier = intent(earlier_change, "v1")
    await first.uploads.claim_new(TENANT, [earlier], first.owner)
    later_at = datetime.now(UTC) + timedelta(minutes=30)
    await first.uploads.wait_for_quota(TENANT, [(earlier, later_at)], first.owner)
    live = await second.uploads.live_uploads(TENANT, [earlier])
    assert live["Invoice/INV1"].waiting_for_quota

    later_change = earlier_change.model_copy(update={"event_id": "later", "content_hash": "h2"})
    later = intent(later_change, "v2")
    taking = await second.uploads.take_over_waiting(TENANT, later, second.owner, TIMEOUT)
    assert taking is not None
    assert [c.event_id for c in taking.changes] == [earlier_change.event_id, "later"]
    rows = await pool.fetch("SELECT payload_hash, claimed_by, quota_until FROM writer_uploads")
    assert [(r["payload_hash"], r["claimed_by"], r["quota_until"]) for r in rows] == [
        ("v2", second.owner, None)
    ]
    # One already being sent is not taken over.
    await second.uploads.sending(TENANT, later)
    third = intent(later_change.model_copy(update={"event_id": "third"}), "v3")
    assert await first.uploads.take_over_waiting(TENANT, third, first.owner, TIMEOUT) is None

"""audit_record_state on the real PostgreSQL: after every batch the recorder appends, the table
holds exactly the status view's rows, whatever order a record's change, result and malformed
messages arrive in, and with two recorders appending a record's change and its result at
once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from audit_support import logged, result_for, supplier_change

from audit_store.lifecycle import migrate
from audit_store.recorder import Recorder
from mlconnector.audit.status import StatusFilter, record_statuses, state_summaries
from mlconnector.contracts import (
    ChangeEvent,
    Event,
    MalformedMessage,
    Outcome,
    malformed_message_id,
)
from mlconnector.field_problems import FieldProblem

pytestmark = pytest.mark.integration

CHANGES = "visma.changes"
RESULTS = "basware.results"


async def view_and_table(conn: asyncpg.Connection) -> tuple[list[Any], list[Any]]:
    columns = [
        r["attname"]
        for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'audit_record_status'::regclass"
            " AND attnum > 0 ORDER BY attnum"
        )
    ]
    listed = ", ".join(columns)
    order = "ORDER BY tenant, entity, entity_id"
    view = await conn.fetch(f"SELECT {listed} FROM audit_record_status {order}")  # noqa: S608
    table = await conn.fetch(f"SELECT {listed} FROM audit_record_state {order}")  # noqa: S608
    return [tuple(r) for r in view], [tuple(r) for r in table]


def malformed_about(change: ChangeEvent, offset: int) -> MalformedMessage:
    """The writer's answer to a change it could not read, naming the change's version."""
    return MalformedMessage(
        event_id=malformed_message_id(CHANGES, 0, offset),
        tenant=change.tenant,
        topic=CHANGES,
        partition=0,
        offset=offset,
        entity=change.entity.value,
        entity_id=change.entity_id,
        supplier_number=change.supplier_number,
        change_event_id=change.event_id,
        content_hash=change.content_hash,
        problems=(FieldProblem(field="name", problem="too long"),),
    )


async def test_the_table_follows_the_view_batch_by_batch(database_url: str) -> None:
    await migrate(database_url)
    answered_late = supplier_change("S-late")
    rejected = supplier_change("S-rejected")
    changed_again = supplier_change("S-rejected", name="Bergen Trelast og Bygg AS")
    unreadable_first = supplier_change("S-malformed")
    garbage = MalformedMessage(
        event_id=malformed_message_id(CHANGES, 1, 7),
        tenant="",
        topic=CHANGES,
        partition=1,
        offset=7,
        problems=(FieldProblem(field="event-type", problem="missing"),),
    )
    # Each batch on its own, in this order: results and malformed messages before the changes
    # they answer, a record changed again after its result, garbage, and a batch sent twice.
    batches: list[list[tuple[Event, str, int, int]]] = [
        [(result_for(answered_late, Outcome.DELIVERED), RESULTS, 0, 0)],
        [(malformed_about(unreadable_first, 5), RESULTS, 0, 1)],
        [(answered_late, CHANGES, 0, 0), (rejected, CHANGES, 0, 1)],
        [(result_for(rejected, Outcome.REJECTED, "too long"), RESULTS, 0, 2)],
        [(unreadable_first, CHANGES, 0, 5), (garbage, RESULTS, 1, 0)],
        [(changed_again, CHANGES, 0, 6)],
        [(changed_again, CHANGES, 0, 6)],
    ]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    conn = await asyncpg.connect(database_url)
    try:
        recorder = Recorder(pool)
        for batch in batches:
            await recorder.append(logged(batch))
            view, table = await view_and_table(conn)
            assert table == view
        states = {
            (s.entity, s.entity_id): s.state for s in await record_statuses(conn, StatusFilter())
        }
        assert states == {
            ("supplier", "S-late"): "delivered",
            ("supplier", "S-rejected"): "pending",
            ("supplier", "S-malformed"): "malformed",
            ("message", f"{CHANGES}[1]@7"): "malformed",
        }
        counted = {(s.entity, s.state): s.records for s in await state_summaries(conn)}
        assert counted == {
            ("supplier", "delivered"): 1,
            ("supplier", "pending"): 1,
            ("supplier", "malformed"): 1,
            ("message", "malformed"): 1,
        }
    finally:
        await conn.close()
        await pool.close()


async def test_two_recorders_of_a_records_change_and_its_result_leave_its_state(
    database_url: str,
) -> None:
    """The change and its result on different topics, appended by two recorders at once,
    batch against batch: whichever commits second recomputes with the other's rows."""
    await migrate(database_url)
    changes = [supplier_change(f"P{i:03d}") for i in range(200)]
    pools = [
        await asyncpg.create_pool(database_url, min_size=1, max_size=1),
        await asyncpg.create_pool(database_url, min_size=1, max_size=1),
    ]
    conn = await asyncpg.connect(database_url)
    try:
        of_changes, of_results = (Recorder(pool) for pool in pools)
        for first in range(0, len(changes), 20):
            some = changes[first : first + 20]
            await asyncio.gather(
                of_changes.append(logged([(c, CHANGES, 0, first + i) for i, c in enumerate(some)])),
                of_results.append(
                    logged(
                        [
                            (result_for(c, Outcome.DELIVERED), RESULTS, 0, first + i)
                            for i, c in enumerate(some)
                        ]
                    )
                ),
            )
        view, table = await view_and_table(conn)
        assert table == view
        counted = {s.state: s.records for s in await state_summaries(conn)}
        assert counted == {"delivered": len(changes)}
    finally:
        await conn.close()
        for pool in pools:
            await pool.close()

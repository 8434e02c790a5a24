"""Where each record stands, read from the audit_record_status view (derived from the log)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from asyncpg.exceptions import UndefinedTableError
from pydantic import BaseModel, TypeAdapter, ValidationError

from mlconnector.audit.stored import Connection
from mlconnector.contracts import BaswareReason, Entity


class RecordState(StrEnum):
    """The latest result's outcome when it answers the latest change; else pending."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"
    PARKED = "parked"
    # Needs a person: an invoice changed in Visma after its upload (its reasons name
    # Basware's document and its state); a replay alone changes nothing.
    EXCEPTION = "exception"
    # Could not be read: a message on visma.changes that is no change event (its own row,
    # entity `message`, id `topic[partition]@offset`), or a record whose change or Visma
    # row fails its fields; the reasons name the fields. Fixed at the source.
    MALFORMED = "malformed"


# Parked records are not among them: the writer keeps them, durably, and sends them once
# what they wait for is accepted; a replay would only queue a second copy.
REPLAYABLE_STATES = (RecordState.FAILED, RecordState.REJECTED)


class RecordStatus(BaseModel):
    tenant: str
    entity: str
    entity_id: str
    supplier_number: str | None
    state: str
    latest_change_id: str | None
    latest_change_at: datetime | None
    latest_change_replay_of: str | None
    content_hash: str | None
    changes: int
    replays: int
    first_change_at: datetime | None
    latest_result_id: str | None
    latest_result_at: datetime | None
    result_change_id: str | None
    outcome: str | None
    reasons: tuple[BaswareReason, ...]
    attempts: int | None
    region: str | None
    request_id: str | None
    results: int


class StatusFilter(BaseModel):
    tenant: str | None = None
    entity: Entity | None = None
    entity_id: str | None = None
    # Any of these ids (empty: no such condition): many records in one read.
    entity_ids: tuple[str, ...] = ()
    states: tuple[RecordState, ...] = ()
    # On the latest result's time: "what failed since Monday".
    since: datetime | None = None
    until: datetime | None = None
    # The Basware category of the latest result's first reason (Preflight, Validation, ...).
    category: str | None = None
    limit: int | None = None


async def record_statuses(conn: Connection, query: StatusFilter) -> list[RecordStatus]:
    # The view joins its per-record parts, which the planner cannot estimate; left to
    # itself it picks nested loops, whose cost grows with the square of the records (minutes
    # for 70,000 records). Hash joins take it in one pass.
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_nestloop = off")
        records = await _select_statuses(conn, query)
    return [
        RecordStatus.model_validate({**dict(r), "reasons": _reasons(r["reasons"])}) for r in records
    ]


async def _select_statuses(conn: Connection, query: StatusFilter) -> list[Any]:
    return await conn.fetch(
        """
        SELECT * FROM audit_record_status
        WHERE ($1::text IS NULL OR tenant = $1)
          AND ($2::text IS NULL OR entity = $2)
          AND ($3::text IS NULL OR entity_id = $3)
          AND (cardinality($4::text[]) = 0 OR state = ANY($4::text[]))
          AND ($5::timestamptz IS NULL OR latest_result_at >= $5)
          AND ($6::timestamptz IS NULL OR latest_result_at < $6)
          AND ($7::text IS NULL OR reasons -> 0 ->> 'category' = $7)
          AND (cardinality($9::text[]) = 0 OR entity_id = ANY($9::text[]))
        ORDER BY coalesce(latest_result_at, latest_change_at) DESC, tenant, entity, entity_id
        LIMIT $8
        """,
        query.tenant,
        query.entity.value if query.entity else None,
        query.entity_id,
        [s.value for s in query.states],
        query.since,
        query.until,
        query.category,
        query.limit,
        list(query.entity_ids),
    )


_REASONS = TypeAdapter(tuple[BaswareReason, ...])


def _reasons(raw: str | None) -> tuple[BaswareReason, ...]:
    if raw is None:
        return ()
    try:
        return _REASONS.validate_json(raw)
    except ValidationError:
        # Shown as it is rather than hidden: a writer that wrote it is worth a look.
        return (BaswareReason(message=raw),)


class StateSummary(BaseModel):
    """How many records of one tenant and entity are in one state, and since when the
    oldest of them waits (for pending records: the age of the oldest undelivered change)."""

    tenant: str
    entity: str
    state: RecordState
    records: int
    oldest_change_at: datetime | None


async def state_summaries(conn: Connection) -> list[StateSummary]:
    """Counts per tenant, entity and state; an empty list before audit-store first ran."""
    try:
        records = await conn.fetch(
            """
            SELECT tenant, entity, state, count(*) AS records,
                   min(latest_change_at) AS oldest_change_at
            FROM audit_record_status
            GROUP BY tenant, entity, state
            ORDER BY tenant, entity, state
            """
        )
    except UndefinedTableError:
        return []
    return [StateSummary.model_validate(dict(r)) for r in records]


async def results_since(conn: Connection, since: datetime) -> int:
    """Result events logged since `since`: the delivery rate over a recent window."""
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE event_type = 'DeliveryResult'"
            " AND event_time >= $1",
            since,
        )
    except UndefinedTableError:
        return 0
    return found

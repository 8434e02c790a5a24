"""Where each record stands: the audit_record_status view derives it from the log.

One record, or a few, are read from the view; every record's state (counts, lists by state
or time) from audit_record_state, which the recorder keeps from the view batch by batch
(audit-store migration 007).
"""

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


# Up to this many records are read one by one (each an index lookup on every partition);
# more, and one pass over the whole view is cheaper.
MAX_RECORD_LOOKUPS = 200


def _conditions(on_state: str) -> str:
    return f"""
        WHERE ($1::text IS NULL OR tenant = $1)
          AND ($2::text IS NULL OR entity = $2)
          AND {on_state}
          AND ($4::timestamptz IS NULL OR latest_result_at >= $4)
          AND ($5::timestamptz IS NULL OR latest_result_at < $5)
          AND ($6::text IS NULL OR reasons -> 0 ->> 'category' = $6)
"""


# Any of the states asked for ($3, none: any state), on the view.
_FILTERED = _conditions("(cardinality($3::text[]) = 0 OR state = ANY($3::text[]))")
# One state ($3, NULL: any), on audit_record_state: an equality, which its index on state and
# time answers in the listing's order.
_ONE_STATE_FILTERED = _conditions("($3::text IS NULL OR state = $3)")
_ORDER = "coalesce(latest_result_at, latest_change_at) DESC, tenant, entity, entity_id"


def _record_ids(query: StatusFilter) -> list[str] | None:
    """The records to look up one by one, or None to read the whole view."""
    if query.entity_id is not None:
        wanted = not query.entity_ids or query.entity_id in query.entity_ids
        return [query.entity_id] if wanted else []
    ids = sorted(set(query.entity_ids))
    return ids if 0 < len(ids) <= MAX_RECORD_LOOKUPS else None


async def record_statuses(conn: Connection, query: StatusFilter) -> list[RecordStatus]:
    ids = _record_ids(query)
    if ids is None:
        records = await _whole_view(conn, query)
    else:
        # One record's parts are reached through the view as index conditions (audit-store
        # migration 006); the rows found are few, and nested loops over them are right. The
        # id stays a parameter in the plan (the index conditions hold for any id), so one
        # plan serves every lookup: planning the view over every partition costs more than
        # running it for one record.
        records = []
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            for entity_id in ids:
                records += await conn.fetch(
                    f"SELECT * FROM audit_record_status {_FILTERED}"  # noqa: S608
                    f" AND entity_id = $7 ORDER BY {_ORDER}",
                    *_filter_args(query, [s.value for s in query.states]),
                    entity_id,
                )
        records.sort(key=_listing_order)
        records = records[: query.limit] if query.limit is not None else records
    return [
        RecordStatus.model_validate({**dict(r), "reasons": _reasons(r["reasons"])}) for r in records
    ]


def _listing_order(record: Any) -> tuple[Any, ...]:
    """The view's ORDER BY in Python: newest first (a record without times first, as
    PostgreSQL sorts NULL in DESC), then tenant, entity and id."""
    moment = record["latest_result_at"] or record["latest_change_at"]
    newest_first = -moment.timestamp() if moment is not None else float("-inf")
    return (newest_first, record["tenant"], record["entity"], record["entity_id"])


def _filter_args(query: StatusFilter, states: list[str] | str | None) -> tuple[Any, ...]:
    """The filter's parameters $1 to $6, $3 the states as the conditions take them."""
    return (
        query.tenant,
        query.entity.value if query.entity else None,
        states,
        query.since,
        query.until,
        query.category,
    )


async def _whole_view(conn: Connection, query: StatusFilter) -> list[Any]:
    """Every record's state (audit_record_state), filtered (by many ids at most, never by one):
    a read per state asked for, each in its index's order, merged."""
    records: list[Any] = []
    states: list[str | None] = [s.value for s in query.states] or [None]
    for state in states:
        records += await conn.fetch(
            f"SELECT * FROM audit_record_state {_ONE_STATE_FILTERED}"  # noqa: S608
            " AND (cardinality($7::text[]) = 0 OR entity_id = ANY($7::text[]))"
            f" ORDER BY {_ORDER} LIMIT $8",
            *_filter_args(query, state),
            list(query.entity_ids),
            query.limit,
        )
    records.sort(key=_listing_order)
    return records[: query.limit] if query.limit is not None else records


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
            FROM audit_record_state
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

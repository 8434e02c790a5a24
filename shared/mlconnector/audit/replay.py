"""Replay: re-publish change events from the log onto visma.changes; history is never edited.

What is replayed, by selection:
- failed: every record whose latest change ended failed or rejected: its latest change;
- pending: every record whose latest change has no result yet (what a lost broker held);
- record: one record's latest change (by tenant, entity and id), or one event by its id;
- offsets: the change events the log holds from one topic partition's offset range.

A replayed message keeps its original key (so the supplier's order holds) and event-type
header, carries `replay-of: <original event id>` (and `replay-reason` when a service, not a
person, replays: "broker lost"), and gets a new event id, in its header and
in its body: every consumer dedupes on event id, so the original id would be dropped as seen.
The new id is uuid5(namespace, "replay|<original>|<n>"), n being one more than the replays
of that original already in the log: running the same replay twice before the first came
back through the log yields the same ids, and the writer drops the second as a duplicate.
The replay of a replay points at the first original, so a record's replays stay one family.

A record delivered since (its latest result answers its latest change and says delivered)
is not replayed, nor is a change superseded by a newer version of the record: re-sending
old data would overwrite new. `force` replays them anyway, and needs a reason, which the
replayed change carries (`force_reason`): for an invoice uploaded before, that is the request
for a re-upload, which the writer makes only once Basware's document is gone or rejected.

A rejection for bad data in Visma is fixed in Visma, and the reader publishes the fixed
version by itself; a replay re-sends what the log holds, so it is for causes fixed elsewhere:
credentials, Basware's master data, an outage, a bug in the writer.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ConfigDict, Field

from mlconnector.audit.status import (
    REPLAYABLE_STATES,
    RecordState,
    RecordStatus,
    StatusFilter,
    record_statuses,
)
from mlconnector.audit.stored import Connection, StoredRow, fetch_rows
from mlconnector.connections import ALL_ENTITIES
from mlconnector.contracts import (
    EVENT_ID_NAMESPACE,
    EVENT_TYPES,
    ChangeEvent,
    DeliveryResult,
    Entity,
    parse_event,
)
from mlconnector.kafka import client_security, event_headers
from mlconnector.mapping import RECODED_ENTITIES, CodingLayout, recoded
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic

CHANGE_EVENT_TYPES = frozenset(
    name for name, model in EVENT_TYPES.items() if issubclass(model, ChangeEvent)
)


class ReplayNotPossible(ValueError):
    """The selection names nothing that can be replayed (unknown record, ambiguous tenant)."""


class FailedRecords(BaseModel):
    kind: Literal["failed"] = "failed"
    tenant: str | None = None
    entity: Entity | None = None
    # On the time of the failing result.
    since: datetime | None = None
    until: datetime | None = None


class PendingRecords(BaseModel):
    """Records whose latest change has no result: after the broker lost its topics, the log
    is the only place those changes still exist (docs/event-broker.md §3.6)."""

    kind: Literal["pending"] = "pending"
    tenant: str | None = None
    entity: Entity | None = None


class OneRecord(BaseModel):
    kind: Literal["record"] = "record"
    entity: Entity
    entity_id: str
    tenant: str | None = None


class OneEvent(BaseModel):
    """A change event by its id; a result's id stands for the change it answers."""

    kind: Literal["event"] = "event"
    event_id: str


class OffsetRange(BaseModel):
    kind: Literal["offsets"] = "offsets"
    topic: str = Topic.VISMA_CHANGES.value
    partition: int = Field(ge=0)
    first_offset: int = Field(ge=0)
    last_offset: int = Field(ge=0)  # inclusive


class RecodedRecords(BaseModel):
    """After a connection's coding layout changed: the latest change of every record whose
    Basware payload the change alters (mapping.recoded), replayed even if delivered."""

    kind: Literal["recoded"] = "recoded"
    tenant: str
    company_code: str
    old: CodingLayout
    new: CodingLayout


ReplaySelection = Annotated[
    FailedRecords | PendingRecords | OneRecord | OneEvent | OffsetRange | RecodedRecords,
    Field(discriminator="kind"),
]


class ReplayAction(StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would replay"  # dry run
    SKIPPED = "skipped"  # delivered since, superseded, or a second copy: nothing to do
    NOT_REPLAYABLE = "cannot replay"  # no change event in that row


class ReplayMessage(BaseModel):
    """One message to re-publish, exactly as it will go onto the changes topic."""

    model_config = ConfigDict(frozen=True)

    key: bytes | None
    value: bytes
    headers: dict[str, str]


class ReplayItem(BaseModel):
    original_event_id: str
    tenant: str | None
    entity: str | None
    entity_id: str | None
    topic: str
    partition: int
    offset: int
    action: ReplayAction
    reason: str | None = None
    replay_event_id: str | None = None


class ReplayReport(BaseModel):
    dry_run: bool
    items: list[ReplayItem]

    def count(self, action: ReplayAction) -> int:
        return sum(1 for item in self.items if item.action == action)


class ReplayPublisher(Protocol):
    async def publish(self, messages: Sequence[ReplayMessage]) -> None:
        """Returns once Kafka acknowledged every message."""


class KafkaReplayPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, messages: Sequence[ReplayMessage]) -> None:
        # One at a time with acks=all: the order of one key's replays is their order here.
        for message in messages:
            await self._producer.send_and_wait(
                self._topic,
                message.value,
                key=message.key,
                headers=[(k, v.encode()) for k, v in message.headers.items()],
            )


@contextlib.asynccontextmanager
async def kafka_replay_publisher(
    settings: KafkaSettings, topic: str = Topic.VISMA_CHANGES.value
) -> AsyncIterator[KafkaReplayPublisher]:
    # The embedded broker offers no idempotent producer (docs/event-broker.md §3.1).
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="mlconnector-replay",
        acks="all",
        enable_idempotence=False,
        **client_security(settings),
    )
    try:
        await producer.start()
        yield KafkaReplayPublisher(producer, topic)
    finally:
        await producer.stop()


def replay_event_id(original_event_id: str, sequence: int) -> str:
    """The id of the n-th replay of an event (n from 1)."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"replay|{original_event_id}|{sequence}"))


def replay_message(
    row: StoredRow,
    new_event_id: str,
    now: datetime,
    replay_reason: str | None = None,
    *,
    force_reason: str | None = None,
) -> ReplayMessage:
    """The change event of `row` as a fresh event: new id, occurring now, same key and type;
    a forced replay carries its reason."""
    change = parse_change(row)
    replayed = change.model_copy(
        update={"event_id": new_event_id, "occurred_at": now, "force_reason": force_reason}
    )
    headers = event_headers(
        replayed,
        correlation_id=row.derived.correlation_id or row.root_event_id,
        replay_of=row.root_event_id,
        replay_reason=replay_reason,
    )
    return ReplayMessage(
        key=row.message.key, value=replayed.model_dump_json().encode(), headers=headers
    )


def parse_change(row: StoredRow) -> ChangeEvent:
    """The row's change event; ValueError when the row holds none."""
    event_type = row.derived.event_type
    if event_type not in CHANGE_EVENT_TYPES or row.derived.payload is None:
        raise ValueError(f"not a change event ({event_type or 'no event type'})")
    event = parse_event(event_type, row.derived.payload)
    assert isinstance(event, ChangeEvent)
    return event


def skip_reason(row: StoredRow, status: RecordStatus | None) -> str | None:
    """Why the row's change must not be replayed (without force); None when it may be."""
    if status is None or status.latest_change_id is None:
        return None
    latest = status.latest_change_id
    latest_root = status.latest_change_replay_of or latest
    if latest != row.event_id and latest_root != row.root_event_id:
        return f"superseded by a newer change ({latest})"
    if status.state == RecordState.DELIVERED:
        when = f" at {status.latest_result_at:%Y-%m-%d %H:%M:%S}" if status.latest_result_at else ""
        return f"already delivered{when} (result {status.latest_result_id}); nothing to replay"
    return None


async def _rows_for(conn: Connection, selection: ReplaySelection) -> list[StoredRow]:
    if isinstance(selection, RecodedRecords):
        ids = [
            s.latest_change_id
            for entity in RECODED_ENTITIES
            for s in await record_statuses(
                conn, StatusFilter(tenant=selection.tenant, entity=entity)
            )
            if s.latest_change_id
        ]
        rows = await fetch_rows(conn, "WHERE event_id = ANY($1::text[]) ORDER BY seq", ids)
        return [
            row
            for row in rows
            if recoded(parse_change(row), selection.company_code, selection.old, selection.new)
        ]
    if isinstance(selection, FailedRecords):
        statuses = await record_statuses(
            conn,
            StatusFilter(
                tenant=selection.tenant,
                entity=selection.entity,
                states=REPLAYABLE_STATES,
                since=selection.since,
                until=selection.until,
            ),
        )
        ids = [s.latest_change_id for s in statuses if s.latest_change_id]
        return await fetch_rows(conn, "WHERE event_id = ANY($1::text[]) ORDER BY seq", ids)
    if isinstance(selection, PendingRecords):
        statuses = await record_statuses(
            conn,
            StatusFilter(
                tenant=selection.tenant, entity=selection.entity, states=(RecordState.PENDING,)
            ),
        )
        ids = [s.latest_change_id for s in statuses if s.latest_change_id]
        return await fetch_rows(conn, "WHERE event_id = ANY($1::text[]) ORDER BY seq", ids)
    if isinstance(selection, OneRecord):
        statuses = await record_statuses(
            conn,
            StatusFilter(
                tenant=selection.tenant, entity=selection.entity, entity_id=selection.entity_id
            ),
        )
        what = f"{selection.entity.value} {selection.entity_id}"
        if not statuses:
            raise ReplayNotPossible(f"the audit log holds no change of {what}")
        if len(statuses) > 1:
            tenants = ", ".join(sorted(s.tenant for s in statuses))
            raise ReplayNotPossible(f"{what} exists in tenants {tenants}: name one with --tenant")
        if statuses[0].latest_change_id is None:
            raise ReplayNotPossible(f"the audit log holds results but no change of {what}")
        return await fetch_rows(conn, "WHERE event_id = $1", statuses[0].latest_change_id)
    if isinstance(selection, OneEvent):
        rows = await fetch_rows(conn, "WHERE event_id = $1", selection.event_id)
        if not rows:
            raise ReplayNotPossible(f"the audit log holds no event {selection.event_id}")
        if rows[0].derived.event_type == DeliveryResult.event_type and rows[0].derived.payload:
            result = DeliveryResult.model_validate_json(rows[0].derived.payload)
            rows = await fetch_rows(conn, "WHERE event_id = $1", result.change_event_id)
            if not rows:
                raise ReplayNotPossible(
                    f"the audit log holds no change {result.change_event_id} "
                    f"(answered by result {selection.event_id})"
                )
        return rows
    return await fetch_rows(
        conn,
        """
        WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset BETWEEN $3 AND $4
        ORDER BY kafka_offset
        """,
        selection.topic,
        selection.partition,
        selection.first_offset,
        selection.last_offset,
    )


def _entity(row: StoredRow) -> Entity | None:
    try:
        return Entity(row.derived.entity) if row.derived.entity else None
    except ValueError:
        return None


RecordKey = tuple[str, str, str]


def _record_of(row: StoredRow) -> RecordKey | None:
    tenant, entity, entity_id = row.derived.tenant, _entity(row), row.derived.entity_id
    return (tenant, entity.value, entity_id) if tenant and entity and entity_id else None


async def _statuses_of(
    conn: Connection, rows: Sequence[StoredRow]
) -> dict[RecordKey, RecordStatus]:
    """The status of every record the rows belong to, in one read of the status view (it is
    computed whole on every read: once per row would be once per row over the whole log)."""
    ids = sorted({key[2] for row in rows if (key := _record_of(row))})
    if not ids:
        return {}
    found = await record_statuses(conn, StatusFilter(entity_ids=tuple(ids)))
    return {(s.tenant, s.entity, s.entity_id): s for s in found}


async def replays_so_far(conn: Connection, originals: set[str]) -> dict[str, int]:
    records = await conn.fetch(
        "SELECT replay_of, count(*) AS n FROM audit_log"
        " WHERE replay_of = ANY($1::text[]) GROUP BY replay_of",
        sorted(originals),
    )
    return {r["replay_of"]: r["n"] for r in records}


def _dependency_order(row: StoredRow) -> tuple[int, int]:
    # Vendor before purchase order before invoice, as the reader publishes them.
    entity = _entity(row)
    return (ALL_ENTITIES.index(entity) if entity else 0, row.seq)


async def replay(
    conn: Connection,
    selection: ReplaySelection,
    publisher: ReplayPublisher | None,
    *,
    dry_run: bool = False,
    force: bool = False,
    force_reason: str | None = None,
    now: datetime | None = None,
    replay_reason: str | None = None,
) -> ReplayReport:
    """Replays what `selection` names (or, with dry_run, says what it would replay);
    `replay_reason` goes into every replay's headers, and so into the log; `force` needs a
    `force_reason`."""
    if publisher is None and not dry_run:
        raise ValueError("a replay that is not a dry run needs a publisher")
    if force and not (force_reason or "").strip():
        raise ReplayNotPossible("a forced replay needs a reason")
    now = now or datetime.now(UTC)
    rows = await _rows_for(conn, selection)
    if isinstance(selection, FailedRecords | PendingRecords | RecodedRecords):
        rows.sort(key=_dependency_order)
    # One replay per original in one run: its last copy in the selection stands for it.
    last_copy = {row.root_event_id: row.seq for row in rows}
    statuses = await _statuses_of(conn, rows) if not force else {}
    replays = await replays_so_far(conn, set(last_copy))
    items: list[ReplayItem] = []
    messages: list[ReplayMessage] = []
    for row in rows:
        action = ReplayAction.SKIPPED
        reason: str | None = None
        if last_copy[row.root_event_id] != row.seq:
            reason = "the same event is replayed once, from its later copy in this selection"
        else:
            try:
                parse_change(row)
            except (KeyError, ValueError) as error:
                action, reason = ReplayAction.NOT_REPLAYABLE, str(error)
        if reason is None and not force:
            key = _record_of(row)
            reason = skip_reason(row, statuses.get(key) if key else None)
        item = ReplayItem(
            original_event_id=row.event_id,
            tenant=row.derived.tenant,
            entity=row.derived.entity,
            entity_id=row.derived.entity_id,
            topic=row.message.topic,
            partition=row.message.partition,
            offset=row.message.offset,
            action=action,
            reason=reason,
        )
        if reason is None:
            sequence = replays.get(row.root_event_id, 0) + 1
            replays[row.root_event_id] = sequence
            item.replay_event_id = replay_event_id(row.root_event_id, sequence)
            item.action = ReplayAction.WOULD_REPLAY if dry_run else ReplayAction.REPLAYED
            messages.append(
                replay_message(
                    row,
                    item.replay_event_id,
                    now,
                    replay_reason,
                    force_reason=force_reason if force else None,
                )
            )
        items.append(item)
    if messages and not dry_run:
        assert publisher is not None
        await publisher.publish(messages)
    return ReplayReport(dry_run=dry_run, items=items)

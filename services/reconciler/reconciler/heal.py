"""`--heal`: each missing or different record's current Visma version, re-published.

The change goes onto visma.changes like a replay: a new event id derived from the record's
own change id (replay_event_id), `replay-of` naming that change and `replay-reason:
reconcile`, so the audit log keeps it as a replay made by the reconciler. It carries
`resend`, because Basware accepted this very content once and the writer would otherwise
skip it as unchanged. Duplicates and extras are never touched; invoices are not re-uploaded
(an upload is not an upsert).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from mlconnector.audit.replay import (
    ReplayMessage,
    ReplayPublisher,
    replay_event_id,
    replays_so_far,
)
from mlconnector.audit.stored import Connection as Database
from mlconnector.contracts import ChangeEvent, Entity, change_from_record
from mlconnector.kafka import event_headers
from mlconnector.visma.client import VismaClient
from mlconnector.visma.models import VismaPurchaseReceipt, VismaRecord
from reconciler.compare import Outcome, RecordOutcome
from reconciler.entities import RECONCILED, VISMA_PAGE_SIZE
from reconciler.reading import ConnectionReport

HEAL_REASON = "reconcile"
HEALED_OUTCOMES = frozenset({Outcome.MISSING, Outcome.DIFFERENT})


class Healed(BaseModel):
    entity: str
    entity_id: str
    event_id: str
    replay_of: str


class BrokerPublisher:
    """Heals published with the service's own broker (the command line has its producer)."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self._broker = broker
        self._topic = topic

    async def publish(self, messages: Sequence[ReplayMessage]) -> None:
        for message in messages:
            await self._broker.publish(
                message.value, self._topic, key=message.key, headers=message.headers
            )


def to_heal(report: ConnectionReport) -> list[RecordOutcome]:
    """The records `--heal` re-publishes: missing or different, of an entity that upserts."""
    return [
        d
        for e in report.entities
        if RECONCILED[Entity(e.totals.entity)].healable
        for d in e.differences
        if d.outcome in HEALED_OUTCOMES and d.entity_id is not None
    ]


async def _current(visma: VismaClient, entity: Entity, entity_id: str) -> VismaRecord:
    if entity is Entity.SUPPLIER:
        return await visma.get_supplier(entity_id)
    if entity is Entity.PURCHASE_ORDER:
        return await visma.get_purchase_order(entity_id)
    raise ValueError(f"{entity.value} is not healed")


async def _receipts_of(
    visma: VismaClient, order_numbers: set[str]
) -> dict[str, list[VismaPurchaseReceipt]]:
    """The receipts whose lines point at these orders: an order's change carries them."""
    found: dict[str, list[VismaPurchaseReceipt]] = {n: [] for n in order_numbers}
    async for receipts in visma.iter_pages(VismaPurchaseReceipt, page_size=VISMA_PAGE_SIZE):
        for receipt in receipts:
            pointed_at = {line.po_order_nbr for line in receipt.lines if line.po_order_nbr}
            for number in pointed_at & order_numbers:
                found[number].append(receipt)
    return found


def heal_message(change: ChangeEvent, sequence: int, now: datetime) -> ReplayMessage:
    healed = change.model_copy(
        update={
            "event_id": replay_event_id(change.event_id, sequence),
            "occurred_at": now,
            "resend": True,
        }
    )
    headers = event_headers(
        healed,
        correlation_id=change.event_id,
        replay_of=change.event_id,
        replay_reason=HEAL_REASON,
    )
    return ReplayMessage(
        key=healed.key.encode(), value=healed.model_dump_json().encode(), headers=headers
    )


async def heal(
    report: ConnectionReport,
    visma: VismaClient,
    database: Database,
    publisher: ReplayPublisher,
    now: datetime | None = None,
) -> list[Healed]:
    """Re-publishes the current Visma version of every record `to_heal` names, vendors
    first (an order needs its vendor)."""
    now = now or datetime.now(UTC)
    wanted = sorted(
        to_heal(report),
        key=lambda d: (list(RECONCILED).index(Entity(d.entity)), d.key),
    )
    orders = {d.entity_id for d in wanted if d.entity == Entity.PURCHASE_ORDER and d.entity_id}
    receipts = await _receipts_of(visma, orders) if orders else {}
    changes: list[ChangeEvent] = []
    for difference in wanted:
        assert difference.entity_id is not None
        record = await _current(visma, Entity(difference.entity), difference.entity_id)
        changes.append(
            change_from_record(report.tenant, record, receipts.get(record.record_id, ()))
        )
    sequences = await replays_so_far(database, {c.event_id for c in changes})
    messages: list[ReplayMessage] = []
    healed: list[Healed] = []
    for change in changes:
        sequence = sequences.get(change.event_id, 0) + 1
        messages.append(heal_message(change, sequence, now))
        healed.append(
            Healed(
                entity=change.entity.value,
                entity_id=change.entity_id,
                event_id=replay_event_id(change.event_id, sequence),
                replay_of=change.event_id,
            )
        )
    if messages:
        await publisher.publish(messages)
    return healed

"""How each kind of logged event reads in a record's lineage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlconnector.audit.lineage import Stage, lineage_step
from mlconnector.audit.rows import ReceivedMessage, log_entry
from mlconnector.audit.stored import StoredRow
from mlconnector.contracts import (
    BaswareNotification,
    BaswareReason,
    DeliveryResult,
    Entity,
    Event,
    InvoiceStatusChanged,
    Outcome,
    VismaNotification,
    change_from_record,
)
from mlconnector.kafka import event_headers
from mlconnector.visma.models import VismaSupplier

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CHANGE = change_from_record(
    "t", VismaSupplier(number="S1", name="Bergen", last_modified_date_time=datetime(2026, 1, 2))
)


def row(
    event: Event | None,
    *,
    replay_of: str | None = None,
    replay_reason: str | None = None,
    value: bytes = b"",
) -> StoredRow:
    headers = (
        event_headers(event, replay_of=replay_of, replay_reason=replay_reason) if event else {}
    )
    entry = log_entry(
        ReceivedMessage(
            topic="some.topic",
            partition=1,
            offset=42,
            key=None,
            headers=tuple((k, v.encode()) for k, v in headers.items()),
            value=event.model_dump_json().encode() if event else value,
            kafka_time=None,
            arrived_at=NOW,
        )
    )
    return StoredRow(
        seq=1, message=entry.message, chain_position=1, row_hash=b"", derived=entry.derived
    )


@pytest.mark.parametrize(
    ("event", "stage", "detail"),
    [
        (
            CHANGE,
            Stage.VISMA_CHANGE,
            f"last modified 2026-01-02 00:00:00, content {CHANGE.content_hash[:12]}",
        ),
        (
            DeliveryResult(
                event_id="r",
                tenant="t",
                change_event_id="c1",
                entity=Entity.SUPPLIER,
                entity_id="S1",
                supplier_number="S1",
                content_hash="h",
                outcome=Outcome.REJECTED,
                attempts=2,
                request_id="req-9",
                reasons=(BaswareReason(code="E12", message="too long", field="name"),),
            ),
            Stage.BASWARE_RESULT,
            "rejected after 2 attempts; for change c1; reasons: E12 too long (name); request req-9",
        ),
        (
            VismaNotification(
                event_id="v",
                tenant="t",
                notification_id="n7",
                entity=Entity.SUPPLIER,
                event="update",
                record_key="S1",
            ),
            Stage.VISMA_WEBHOOK,
            "update (notification n7)",
        ),
        (
            BaswareNotification(
                event_id="b",
                tenant="t",
                task_id="t1",
                task_type="AccountingDocuments",
                document_id="S1",
                status="Completed",
            ),
            Stage.BASWARE_WEBHOOK,
            "AccountingDocuments Completed (task t1)",
        ),
        (
            InvoiceStatusChanged(
                event_id="i",
                tenant="t",
                supplier_number="S1",
                entity_id="Invoice/1",
                basware_status="approved",
                detail="by Kari",
            ),
            Stage.INVOICE_STATUS,
            "approved: by Kari",
        ),
    ],
)
def test_each_event_reads_as_one_line(event: Event, stage: Stage, detail: str) -> None:
    step = lineage_step(row(event))
    assert (step.stage, step.detail) == (stage, detail)
    assert (step.topic, step.partition, step.offset) == ("some.topic", 1, 42)
    assert step.event_time == event.occurred_at


def test_a_replay_says_what_it_replays() -> None:
    step = lineage_step(row(CHANGE, replay_of="orig-1"))
    assert step.stage is Stage.REPLAY
    assert step.detail.startswith("replay of orig-1; last modified")


def test_a_replay_a_service_published_says_why() -> None:
    step = lineage_step(row(CHANGE, replay_of="orig-1", replay_reason="broker lost"))
    assert step.stage is Stage.REPLAY
    assert step.detail.startswith("replay of orig-1 (broker lost); last modified")


def test_an_unreadable_message_is_still_listed() -> None:
    step = lineage_step(row(None, value=b"\xff"))
    assert (step.stage, step.detail) == (Stage.OTHER, "unreadable message")
    assert step.event_id == "kafka:some.topic/1/42"

"""Lineage: one record's whole story from the log, in order.

Visma changes (and replays of them), Basware results, the operators' actions on it, and
the webhooks that name the record: Visma notifications (by record key), Basware task
notifications (by document id) and invoice status changes (by the Visma invoice id).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ValidationError

from mlconnector.audit.rows import header_text
from mlconnector.audit.stored import Connection, StoredRow, fetch_rows
from mlconnector.contracts import (
    BaswareNotification,
    ChangeEvent,
    DeliveryResult,
    Entity,
    Event,
    InvoiceStatusChanged,
    OperatorAction,
    VismaNotification,
    parse_event,
)
from mlconnector.kafka import HEADER_REPLAY_REASON


class Stage(StrEnum):
    VISMA_CHANGE = "Visma change"
    REPLAY = "replay"
    BASWARE_RESULT = "Basware result"
    VISMA_WEBHOOK = "Visma webhook"
    BASWARE_WEBHOOK = "Basware webhook"
    INVOICE_STATUS = "invoice status"
    OPERATOR = "operator"
    OTHER = "other"


class LineageStep(BaseModel):
    event_time: datetime
    arrived_at: datetime
    stage: Stage
    event_type: str | None
    event_id: str
    tenant: str | None
    topic: str
    partition: int
    offset: int
    detail: str


def _reasons_text(result: DeliveryResult) -> str:
    return "; ".join(
        " ".join(filter(None, (r.code, r.message, f"({r.field})" if r.field else None)))
        for r in result.reasons
    )


def _describe(event: Event, row: StoredRow) -> tuple[Stage, str]:
    if isinstance(event, ChangeEvent):
        text = (
            f"last modified {event.last_modified:%Y-%m-%d %H:%M:%S}, "
            f"content {event.content_hash[:12]}"
        )
        if row.derived.replay_of:
            why = header_text(row.message.headers, HEADER_REPLAY_REASON)
            because = f" ({why})" if why else ""
            return Stage.REPLAY, f"replay of {row.derived.replay_of}{because}; {text}"
        return Stage.VISMA_CHANGE, text
    if isinstance(event, DeliveryResult):
        attempts = f"{event.attempts} attempt{'s' if event.attempts != 1 else ''}"
        parts = [f"{event.outcome.value} after {attempts}", f"for change {event.change_event_id}"]
        if event.reasons:
            parts.append(f"reasons: {_reasons_text(event)}")
        if event.request_id:
            parts.append(f"request {event.request_id}")
        return Stage.BASWARE_RESULT, "; ".join(parts)
    if isinstance(event, VismaNotification):
        return Stage.VISMA_WEBHOOK, f"{event.event} (notification {event.notification_id})"
    if isinstance(event, BaswareNotification):
        status = f" {event.status}" if event.status else ""
        return Stage.BASWARE_WEBHOOK, f"{event.task_type}{status} (task {event.task_id})"
    if isinstance(event, InvoiceStatusChanged):
        detail = f": {event.detail}" if event.detail else ""
        return Stage.INVOICE_STATUS, f"{event.basware_status}{detail}"
    if isinstance(event, OperatorAction):
        reason = f" because: {event.reason}" if event.reason else ""
        detail = f" ({event.detail})" if event.detail else ""
        return Stage.OPERATOR, f"{event.action} by {event.actor}{reason}{detail}"
    return Stage.OTHER, event.event_type


def lineage_step(row: StoredRow) -> LineageStep:
    """What one row of the log says about its record, in a line."""
    try:
        if row.derived.event_type is None or row.derived.payload is None:
            raise ValueError("not an event")
        stage, detail = _describe(parse_event(row.derived.event_type, row.derived.payload), row)
    except (KeyError, ValueError, ValidationError):
        stage, detail = Stage.OTHER, f"unreadable {row.derived.event_type or 'message'}"
    return LineageStep(
        event_time=row.derived.event_time,
        arrived_at=row.message.arrived_at,
        stage=stage,
        event_type=row.derived.event_type,
        event_id=row.event_id,
        tenant=row.derived.tenant,
        topic=row.message.topic,
        partition=row.message.partition,
        offset=row.message.offset,
        detail=detail,
    )


async def record_lineage(
    conn: Connection, entity: Entity, entity_id: str, tenant: str | None = None
) -> list[LineageStep]:
    """Every logged event about the record, oldest first (by event time, then arrival)."""
    rows = await fetch_rows(
        conn,
        """
        WHERE entity_id = $1 AND (entity = $2 OR entity IS NULL)
          AND ($3::text IS NULL OR tenant = $3)
        ORDER BY event_time, seq
        """,
        entity_id,
        entity.value,
        tenant,
    )
    return [lineage_step(row) for row in rows]

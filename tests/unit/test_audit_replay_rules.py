"""Replay's pure parts: the new event id, the message it sends, and when it declines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mlconnector.audit.replay import parse_change, replay_event_id, replay_message, skip_reason
from mlconnector.audit.rows import ReceivedMessage, log_entry
from mlconnector.audit.status import RecordStatus
from mlconnector.audit.stored import StoredRow
from mlconnector.contracts import ChangeEvent, Event, change_from_record, parse_event
from mlconnector.kafka import event_headers
from mlconnector.visma.models import VismaSupplier

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def change(name: str = "Bergen Trelast AS") -> ChangeEvent:
    record = VismaSupplier(number="S1", name=name, last_modified_date_time=datetime(2026, 1, 1))
    return change_from_record("1000001", record)


def stored(event: Event, *, replay_of: str | None = None, seq: int = 1) -> StoredRow:
    headers = event_headers(event, replay_of=replay_of)
    entry = log_entry(
        ReceivedMessage(
            topic="visma.changes",
            partition=3,
            offset=seq,
            key=b"1000001:S1",
            headers=tuple((k, v.encode()) for k, v in headers.items()),
            value=event.model_dump_json().encode(),
            kafka_time=NOW,
            arrived_at=NOW,
        )
    )
    return StoredRow(
        seq=seq, message=entry.message, chain_position=seq, row_hash=b"", derived=entry.derived
    )


def status(**fields: object) -> RecordStatus:
    base: dict[str, object] = {
        "tenant": "1000001",
        "entity": "supplier",
        "entity_id": "S1",
        "supplier_number": "S1",
        "state": "rejected",
        "latest_change_id": None,
        "latest_change_at": NOW,
        "latest_change_replay_of": None,
        "content_hash": None,
        "changes": 1,
        "replays": 0,
        "first_change_at": NOW,
        "latest_result_id": "r1",
        "latest_result_at": NOW,
        "result_change_id": None,
        "outcome": "rejected",
        "reasons": (),
        "attempts": 1,
        "region": None,
        "request_id": None,
        "results": 1,
    }
    return RecordStatus.model_validate(base | fields)


def test_replay_ids_are_new_deterministic_and_numbered() -> None:
    assert replay_event_id("e1", 1) == replay_event_id("e1", 1)
    assert len({replay_event_id("e1", 1), replay_event_id("e1", 2), replay_event_id("e2", 1)}) == 3
    assert replay_event_id("e1", 1) != "e1"


def test_a_replayed_message_is_the_same_change_under_a_new_id_with_replay_of() -> None:
    original = change()
    row = stored(original)
    message = replay_message(row, "new-id", NOW)
    assert message.key == b"1000001:S1"
    assert message.headers["event-id"] == "new-id"
    assert message.headers["event-type"] == "SupplierChanged"
    assert message.headers["replay-of"] == original.event_id
    assert message.headers["correlation-id"] == original.event_id
    assert "replay-reason" not in message.headers  # a person asked for it
    replayed = parse_event("SupplierChanged", message.value)
    assert isinstance(replayed, ChangeEvent)
    assert replayed.event_id == "new-id"
    assert replayed.occurred_at == NOW
    assert replayed.model_dump(exclude={"event_id", "occurred_at"}) == original.model_dump(
        exclude={"event_id", "occurred_at"}
    )


def test_a_replay_a_service_publishes_carries_its_reason() -> None:
    message = replay_message(stored(change()), "new-id", NOW, "broker lost")
    assert message.headers["replay-reason"] == "broker lost"


def test_the_replay_of_a_replay_points_at_the_first_original() -> None:
    original = change()
    first_replay = original.model_copy(update={"event_id": replay_event_id(original.event_id, 1)})
    row = stored(first_replay, replay_of=original.event_id)
    assert row.root_event_id == original.event_id
    assert replay_message(row, "x", NOW).headers["replay-of"] == original.event_id


def test_only_change_events_can_be_replayed() -> None:
    row = stored(change())
    not_json = row.model_copy(update={"derived": row.derived.model_copy(update={"payload": None})})
    with pytest.raises(ValueError, match="not a change event"):
        parse_change(not_json)
    result_type = row.derived.model_copy(update={"event_type": "DeliveryResult"})
    with pytest.raises(ValueError, match=r"not a change event \(DeliveryResult\)"):
        parse_change(row.model_copy(update={"derived": result_type}))
    assert json.loads(row.derived.payload or "")["entity_id"] == "S1"


def test_what_is_declined_and_why() -> None:
    original = change()
    row = stored(original)
    mine = {"latest_change_id": original.event_id}
    assert skip_reason(row, None) is None
    assert skip_reason(row, status(**mine)) is None
    assert skip_reason(row, status(**mine, state="pending")) is None
    delivered = skip_reason(row, status(**mine, state="delivered", latest_result_id="r9"))
    assert delivered is not None
    assert delivered.startswith("already delivered at 2026-11-25 12:00:00 (result r9)")
    newer = change("Bergen Trelast ASA")
    assert skip_reason(row, status(latest_change_id=newer.event_id)) == (
        f"superseded by a newer change ({newer.event_id})"
    )
    # The latest change being a replay of this very event is no newer version.
    replayed = {"latest_change_id": "r-1", "latest_change_replay_of": original.event_id}
    assert skip_reason(row, status(**replayed)) is None

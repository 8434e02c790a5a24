"""What a Kafka message becomes in the audit log, and the hash that chains it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from audit_store.recorder import chained_records, first_of_each_event
from mlconnector.audit.rows import (
    GENESIS_HASH,
    ReceivedMessage,
    chain_hash,
    derive,
    headers_from_json,
    headers_json,
    json_payload,
    kafka_timestamp,
    log_entry,
)
from mlconnector.audit.stored import LOG_COLUMNS
from mlconnector.contracts import (
    BaswareNotification,
    Entity,
    Event,
    InvoiceStatusChanged,
    VismaNotification,
    change_from_record,
)
from mlconnector.kafka import event_headers
from mlconnector.visma.models import VismaSupplier

ARRIVED = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)


def message(
    value: bytes | None = b"{}",
    headers: tuple[tuple[str, bytes | None], ...] = (),
    *,
    offset: int = 7,
    key: bytes | None = b"k",
    kafka_time: datetime | None = None,
) -> ReceivedMessage:
    return ReceivedMessage(
        topic="visma.changes",
        partition=3,
        offset=offset,
        key=key,
        headers=headers,
        value=value,
        kafka_time=kafka_time,
        arrived_at=ARRIVED,
    )


def of_event(event: Event, offset: int = 7) -> ReceivedMessage:
    headers = tuple((k, v.encode()) for k, v in event_headers(event).items())
    return message(event.model_dump_json().encode(), headers, offset=offset)


def supplier(number: str = "S1") -> Event:
    record = VismaSupplier(
        number=number, name="Bergen", last_modified_date_time=datetime(2026, 1, 1)
    )
    return change_from_record("1000001", record)


def test_a_change_event_gives_its_id_type_and_record() -> None:
    event = supplier()
    derived = derive(of_event(event))
    assert derived.event_id == event.event_id
    assert derived.event_type == "SupplierChanged"
    assert (derived.tenant, derived.entity, derived.entity_id) == ("1000001", "supplier", "S1")
    assert derived.event_time == event.occurred_at
    assert derived.correlation_id == event.event_id
    assert derived.replay_of is None
    assert derived.payload is not None
    assert json.loads(derived.payload)["event_id"] == event.event_id


def test_without_an_id_header_the_body_id_and_else_the_kafka_place_names_the_message() -> None:
    assert derive(message(b'{"event_id": "from-body"}')).event_id == "from-body"
    assert derive(message(b"not json")).event_id == "kafka:visma.changes/3/7"
    for bad in (b"", b"   ", b"x" * 201, b"\xff\xfe", b"a\x00b", None):
        found = derive(message(b"{}", (("event-id", bad),))).event_id
        assert found == "kafka:visma.changes/3/7"


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b'{"amount": NaN}',
        b"[Infinity]",
        b"1e400",
        b'{"text": "nul \\u0000 inside"}',
        b'"lone \\ud800 surrogate"',
        b"\xff\xfe",
        b"[" * 100_000,
        None,
    ],
)
def test_values_jsonb_would_refuse_are_kept_as_bytes_only(value: bytes | None) -> None:
    assert json_payload(value) is None
    assert derive(message(value)).payload is None


def test_json_is_stored_as_sent_unless_jsonb_needs_it_spelled_otherwise() -> None:
    sent = b'{"b": 1, "a": [1.50, "x"]}'
    assert json_payload(sent) == ({"b": 1, "a": [1.5, "x"]}, sent.decode())
    # A surrogate pair written as escapes is one character to jsonb.
    assert json_payload(b'["\\ud83d\\ude00"]') == (["\U0001f600"], '["\U0001f600"]')


def test_headers_read_back_to_the_same_bytes_in_order_with_duplicates() -> None:
    headers = (
        ("event-id", b"e1"),
        ("bin", b"\xff\x00\x01"),
        ("nul", b"a\x00"),
        ("bin", b"2"),
        ("none", None),
    )
    text = headers_json(headers)
    assert headers_from_json(text) == headers
    assert headers_json(headers_from_json(text)) == text


@pytest.mark.parametrize(
    ("event", "entity", "entity_id"),
    [
        (
            VismaNotification(
                event_id="v",
                tenant="t",
                notification_id="n",
                entity=Entity.SUPPLIER,
                event="update",
                record_key="S1",
            ),
            "supplier",
            "S1",
        ),
        (
            BaswareNotification(
                event_id="b",
                tenant="t",
                task_id="x",
                task_type="AccountingDocuments",
                document_id="D9",
            ),
            None,
            "D9",
        ),
        (
            InvoiceStatusChanged(
                event_id="i",
                tenant="t",
                supplier_number="S1",
                entity_id="Invoice/17",
                basware_status="approved",
            ),
            "supplier_invoice",
            "Invoice/17",
        ),
    ],
)
def test_webhook_events_name_the_record_they_are_about(
    event: Event, entity: str | None, entity_id: str
) -> None:
    derived = derive(of_event(event))
    assert (derived.entity, derived.entity_id) == (entity, entity_id)


def test_event_time_is_occurred_at_else_kafkas_time_else_arrival() -> None:
    naive = derive(message(b'{"occurred_at": "2026-01-02T03:04:05"}'))
    assert naive.event_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    kafka_time = ARRIVED - timedelta(seconds=5)
    assert derive(message(b'{"occurred_at": 5}', kafka_time=kafka_time)).event_time == kafka_time
    assert derive(message(b"[]")).event_time == ARRIVED
    before_year_one = b'{"occurred_at": "0001-01-01T00:00:00+01:00"}'
    assert derive(message(before_year_one)).event_time == ARRIVED
    assert kafka_timestamp(-1) is None
    assert kafka_timestamp(2**62) is None
    assert kafka_timestamp(1_000) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_every_field_that_arrived_is_in_the_hash() -> None:
    base = message(b'{"a": 1}', (("h", b"v"),), kafka_time=ARRIVED)
    digest = chain_hash(GENESIS_HASH, base, 1)
    assert chain_hash(GENESIS_HASH, base, 1) == digest
    changed = [
        base.model_copy(update={"topic": "other"}),
        base.model_copy(update={"partition": 4}),
        base.model_copy(update={"offset": 8}),
        base.model_copy(update={"key": None}),
        base.model_copy(update={"headers": (("h", b"w"),)}),
        base.model_copy(update={"value": b'{"a": 2}'}),
        base.model_copy(update={"kafka_time": None}),
        base.model_copy(update={"arrived_at": ARRIVED + timedelta(microseconds=1)}),
    ]
    assert all(chain_hash(GENESIS_HASH, m, 1) != digest for m in changed)
    assert chain_hash(GENESIS_HASH, base, 2) != digest
    assert chain_hash(b"\x01" * 32, base, 1) != digest


def test_bytes_cannot_move_from_one_field_to_its_neighbour_unnoticed() -> None:
    one = message(b"c", key=b"ab")
    other = message(b"bc", key=b"a")
    assert chain_hash(GENESIS_HASH, one, 1) != chain_hash(GENESIS_HASH, other, 1)


def test_a_batch_keeps_the_first_copy_of_an_event_and_chains_rows_in_offset_order() -> None:
    first, second = supplier("S1"), supplier("S2")
    entries = [
        log_entry(of_event(second, offset=11)),
        log_entry(of_event(first, offset=10)),
        log_entry(of_event(first, offset=12)),  # published twice
    ]
    unique = first_of_each_event(entries)
    assert [e.message.offset for e in unique] == [10, 11]

    chain = ("visma.changes", 3)
    records, heads = chained_records(unique, {chain: (4, b"\x02" * 32)})
    position = LOG_COLUMNS.index("chain_position")
    row_hash = LOG_COLUMNS.index("row_hash")
    assert [r[position] for r in records] == [5, 6]
    assert records[0][row_hash] == chain_hash(b"\x02" * 32, unique[0].message, 5)
    assert records[1][row_hash] == chain_hash(records[0][row_hash], unique[1].message, 6)
    assert heads[chain] == (6, records[1][row_hash])

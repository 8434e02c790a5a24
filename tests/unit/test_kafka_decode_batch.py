"""decode_batch: the one reader of raw batches, one message at a time."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from mlconnector.contracts import BaswareNotification, SupplierChanged, SupplierInvoiceChanged
from mlconnector.kafka import HEADER_EVENT_TYPE, decode_batch, event_headers

NOTIFICATION = BaswareNotification(event_id="e-1", tenant="acme", task_id="t-1", task_type="X")


def record(offset: int, body: bytes, event_type: str | None) -> ConsumerRecord[bytes, bytes]:
    headers = [] if event_type is None else [(HEADER_EVENT_TYPE, event_type.encode())]
    return ConsumerRecord(
        "basware.events", 3, offset, 0, 0, b"acme:d", body, None, 0, len(body), headers
    )


def notification_record(offset: int, event: BaswareNotification) -> ConsumerRecord[bytes, bytes]:
    """As the services publish it (`publish_events`): its headers, its JSON."""
    found = record(offset, event.model_dump_json().encode(), None)
    found.headers = [(k, v.encode()) for k, v in event_headers(event).items()]
    return found


def test_wanted_events_are_read_in_order_and_others_passed_over_unparsed() -> None:
    second = NOTIFICATION.model_copy(update={"event_id": "e-2"})
    batch = decode_batch(
        [
            notification_record(0, NOTIFICATION),
            # Another known type: passed over without its body being read.
            record(1, b"not even json", SupplierChanged.event_type),
            notification_record(2, second),
        ],
        [BaswareNotification],
    )
    assert [e.event_id for e in batch.events] == ["e-1", "e-2"]
    assert all(isinstance(e, BaswareNotification) for e in batch.events)
    assert batch.unreadable == ()


def test_messages_without_a_readable_event_are_named_by_place_not_by_body() -> None:
    secret_body = b'{"event_id": "x", "tenant": "acme", "password": "hunter2"}'
    batch = decode_batch(
        [
            record(7, secret_body, BaswareNotification.event_type),
            record(8, b"{}", None),
            record(9, b"{}", "SomethingElse"),
            notification_record(10, NOTIFICATION),
        ],
        [BaswareNotification],
    )
    assert [e.event_id for e in batch.events] == ["e-1"]
    assert [(m.topic, m.partition, m.offset) for m in batch.unreadable] == [
        ("basware.events", 3, 7),
        ("basware.events", 3, 8),
        ("basware.events", 3, 9),
    ]
    invalid, untyped, unknown = (m.reason for m in batch.unreadable)
    assert invalid.startswith("BaswareNotification task_id: ")
    assert "hunter2" not in invalid
    assert (untyped, unknown) == ("unknown event type ''", "unknown event type 'SomethingElse'")


def test_an_unreadable_change_names_every_failing_field_and_the_record_it_was_about() -> None:
    body = (
        b'{"event_id": "c-1", "tenant": "1000001", "entity": "supplier_invoice",'
        b' "entity_id": "Invoice/1", "supplier_number": "50012", "content_hash": "h",'
        b' "password": "hunter2"}'
    )
    batch = decode_batch(
        [record(7, body, SupplierInvoiceChanged.event_type)], [SupplierInvoiceChanged]
    )
    (unreadable,) = batch.unreadable
    fields = {p.field for p in unreadable.problems}
    assert {"last_modified", "record"} <= fields
    assert all(field in unreadable.reason for field in fields)
    malformed = unreadable.malformed()
    assert (malformed.topic, malformed.partition, malformed.offset) == ("basware.events", 3, 7)
    assert (malformed.tenant, malformed.entity_id, malformed.change_event_id) == (
        "1000001",
        "Invoice/1",
        "c-1",
    )
    assert malformed.key == "1000001:50012"
    assert "hunter2" not in malformed.model_dump_json()
    assert unreadable.malformed().event_id == malformed.event_id  # the same message, one id

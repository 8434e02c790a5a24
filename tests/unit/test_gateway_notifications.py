"""Mapping verified webhook bodies to the events the gateway republishes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mlconnector.contracts import Entity
from webhook_gateway.answers import Reason, Refused
from webhook_gateway.notifications import (
    basware_notification,
    check_visma_body_time,
    check_visma_tenant,
    is_connection_test,
    parse_basware_task,
    parse_visma_body,
    path_tenant,
    visma_entity,
    visma_notification,
    visma_notification_id,
    visma_tenant_id,
)


def task_body(**fields: object) -> bytes:
    body: dict[str, object] = {
        "taskId": "eb9ea3fa-69de-4a5a-8a1a-f4347cd18626",
        "taskStatus": "New",
        "taskType": "AccountingDocuments",
        "taskSubType": "WaitingForTransfer",
        "documentId": "63255782d0a04d8d8defcc6a0062101d",
        "expirationTime": "2021-12-11T08:53:31Z",
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_basware_task_becomes_a_notification_keyed_by_tenant_and_document() -> None:
    event = basware_notification("acme", parse_basware_task(task_body()))
    assert event.task_id == "eb9ea3fa-69de-4a5a-8a1a-f4347cd18626"
    assert event.task_sub_type == "WaitingForTransfer"
    assert event.status == "New"
    assert event.key == "acme:63255782d0a04d8d8defcc6a0062101d"


def test_event_id_follows_tenant_and_task_id() -> None:
    task = parse_basware_task(task_body())
    same = basware_notification("acme", task).event_id
    assert basware_notification("acme", task).event_id == same
    assert basware_notification("globex", task).event_id != same
    other = parse_basware_task(task_body(taskId="another"))
    assert basware_notification("acme", other).event_id != same


def test_spec_typo_in_task_type_is_normalised() -> None:
    task = parse_basware_task(task_body(taskType="AccoutingDocuments"))
    event = basware_notification("acme", task)
    assert event.task_type == "AccountingDocuments"


def test_connection_test_is_recognised() -> None:
    assert is_connection_test(parse_basware_task(task_body(taskType="ConnectionTest")))
    assert not is_connection_test(parse_basware_task(task_body()))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"taskId": "t", ', Reason.MALFORMED_JSON),
        (b"not json", Reason.MALFORMED_JSON),
        (b"[]", Reason.INVALID_PAYLOAD),
        (task_body(documentId=None), Reason.INVALID_PAYLOAD),
        (task_body(taskId=""), Reason.INVALID_PAYLOAD),
        (task_body(taskStatus=None), Reason.INVALID_PAYLOAD),
        (task_body(taskId="t\u00001"), Reason.INVALID_PAYLOAD),
        (task_body(documentId="d\n1"), Reason.INVALID_PAYLOAD),
    ],
)
def test_unusable_basware_bodies_are_refused(body: bytes, reason: Reason) -> None:
    with pytest.raises(Refused) as caught:
        parse_basware_task(body)
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("name", "entity"),
    [
        ("Supplier", Entity.SUPPLIER),
        ("Purchase Order", Entity.PURCHASE_ORDER),
        ("PurchaseOrder", Entity.PURCHASE_ORDER),
        ("AP Invoice", Entity.SUPPLIER_INVOICE),
        ("supplier_invoice", Entity.SUPPLIER_INVOICE),
        ("Account", None),
        ("Background API Operation", None),
    ],
)
def test_visma_entity_names(name: str, entity: Entity | None) -> None:
    assert visma_entity(name) is entity


def visma_body(**fields: object) -> bytes:
    body: dict[str, object] = {
        "entity": "Supplier",
        "event": "Changed",
        "id": "50012",
        "tenantId": "acme",
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_visma_notification_for_a_synced_entity() -> None:
    event = visma_notification("1000001", "digest-1", "n-1", parse_visma_body(visma_body()))
    assert event is not None
    assert (event.tenant, event.entity, event.event, event.record_key) == (
        "1000001",
        Entity.SUPPLIER,
        "Changed",
        "50012",
    )
    assert event.key == "1000001:supplier"


def test_visma_notification_for_another_entity_is_none() -> None:
    parsed = parse_visma_body(visma_body(entity="Account"))
    assert visma_notification("acme", "digest-1", "n-1", parsed) is None


def test_visma_tenant_id_comes_from_the_header_and_the_body_must_agree() -> None:
    assert visma_tenant_id({"x-vwd-tenant-id": "acme"}) == "acme"
    with pytest.raises(Refused) as missing:
        visma_tenant_id({})
    assert missing.value.reason is Reason.MISSING_TENANT_ID
    check_visma_tenant("acme", parse_visma_body(visma_body()))
    check_visma_tenant("acme", parse_visma_body(visma_body(tenantId=None)))
    with pytest.raises(Refused) as caught:
        check_visma_tenant("globex", parse_visma_body(visma_body()))
    assert caught.value.reason is Reason.TENANT_MISMATCH


def test_visma_notification_id_is_required() -> None:
    assert visma_notification_id({"x-vwd-notification-id": " n-1 "}) == "n-1"
    with pytest.raises(Refused) as caught:
        visma_notification_id({})
    assert caught.value.reason is Reason.MISSING_NOTIFICATION_ID


def test_the_visma_event_id_follows_what_was_signed_not_the_header_id() -> None:
    parsed = parse_visma_body(visma_body())
    first = visma_notification("1000001", "digest-1", "n-1", parsed)
    replayed = visma_notification("1000001", "digest-1", "n-2", parsed)
    other = visma_notification("1000001", "digest-2", "n-1", parsed)
    assert first is not None
    assert replayed is not None
    assert other is not None
    assert first.event_id == replayed.event_id != other.event_id


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


@pytest.mark.parametrize(
    "stamp", ["2026-11-25T12:09:00.000Z", "2026-11-25T11:51:00Z", "2026-11-25T13:05:00+01:00"]
)
def test_a_visma_body_inside_its_time_window_passes(stamp: str) -> None:
    check_visma_body_time(parse_visma_body(visma_body(timestamp=stamp)), NOW, WINDOW)


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("2026-11-25T11:49:00Z", Reason.STALE_TIMESTAMP),
        ("2026-11-25T12:11:00Z", Reason.STALE_TIMESTAMP),
        ("2025-01-01T00:00:00", Reason.STALE_TIMESTAMP),
        ("²", Reason.BAD_TIMESTAMP),
        ("yesterday", Reason.BAD_TIMESTAMP),
    ],
)
def test_a_visma_body_outside_its_window_or_with_a_bad_time_is_refused(
    stamp: str, reason: Reason
) -> None:
    with pytest.raises(Refused) as caught:
        check_visma_body_time(parse_visma_body(visma_body(timestamp=stamp)), NOW, WINDOW)
    assert caught.value.reason is reason


def test_a_visma_body_without_a_time_is_not_judged_by_time() -> None:
    check_visma_body_time(parse_visma_body(visma_body()), NOW, WINDOW)


@pytest.mark.parametrize("field", ["entity", "event", "id", "tenantId", "timestamp"])
def test_control_characters_in_a_visma_body_are_refused(field: str) -> None:
    with pytest.raises(Refused) as caught:
        parse_visma_body(visma_body(**{field: "Supp\u0000lier"}))
    assert caught.value.reason is Reason.INVALID_PAYLOAD


@pytest.mark.parametrize("value", ["n\x00", "n\x7f", "n\u00e9", "n" * 201])
def test_a_malformed_header_id_is_a_bad_header(value: str) -> None:
    with pytest.raises(Refused) as caught:
        visma_notification_id({"x-vwd-notification-id": value})
    assert caught.value.reason is Reason.BAD_HEADER


@pytest.mark.parametrize("tenant", ["1000001", "acme-no", "a.b_c"])
def test_path_tenants_that_can_be_tenants(tenant: str) -> None:
    assert path_tenant(tenant) == tenant


@pytest.mark.parametrize("tenant", ["..", ".", "", "1000001\x00", "²", "a/b", "x" * 64, "-a"])
def test_path_tenants_that_cannot_be_tenants_are_unknown(tenant: str) -> None:
    with pytest.raises(Refused) as caught:
        path_tenant(tenant)
    assert caught.value.reason is Reason.UNKNOWN_TENANT

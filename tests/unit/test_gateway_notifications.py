"""Mapping verified webhook bodies to the events the gateway republishes."""

from __future__ import annotations

import json

import pytest

from mlconnector.contracts import Entity
from webhook_gateway.answers import Reason, Refused
from webhook_gateway.notifications import (
    basware_notification,
    check_visma_tenant,
    is_connection_test,
    parse_basware_task,
    parse_visma_body,
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
    event = visma_notification("1000001", "n-1", parse_visma_body(visma_body()))
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
    assert visma_notification("acme", "n-1", parsed) is None


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

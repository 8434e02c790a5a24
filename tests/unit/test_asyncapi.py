"""docs/asyncapi.yaml is what the apps declare, and names the events each topic carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema

from mlconnector.contracts import (
    EVENT_TYPES,
    AccountChanged,
    BaswareNotification,
    ChangeEvent,
    CreditTermChanged,
    DeliveryResult,
    DimensionValueChanged,
    Event,
    InvoiceStatusChanged,
    MalformedMessage,
    OperatorAction,
    PurchaseOrderChanged,
    SupplierChanged,
    SupplierInvoiceChanged,
    UnreadableRecord,
    VatCategoryChanged,
    VismaNotification,
)
from mlconnector.topics import ALL_TOPICS, Topic
from mlconnector_cli.asyncapi import (
    ChangeEvents,
    DocumentError,
    in_name_order,
    receive_what_is_sent,
    render,
)

DOCUMENT = Path(__file__).parents[2] / "docs" / "asyncapi.yaml"
REF_TEMPLATE = "#/components/schemas/{model}"
CHANGES: frozenset[type[Event]] = frozenset(
    {
        SupplierChanged,
        PurchaseOrderChanged,
        SupplierInvoiceChanged,
        CreditTermChanged,
        VatCategoryChanged,
        AccountChanged,
        DimensionValueChanged,
    }
)
# Written out here, not taken from the generator's senders: the two must agree.
CARRIED: dict[Topic, frozenset[type[Event]]] = {
    Topic.VISMA_CHANGES: CHANGES | {UnreadableRecord},
    Topic.VISMA_NOTIFICATIONS: frozenset({VismaNotification}),
    Topic.BASWARE_RESULTS: frozenset({DeliveryResult, MalformedMessage}),
    Topic.BASWARE_EVENTS: frozenset({BaswareNotification, InvoiceStatusChanged}),
    Topic.OPERATOR_ACTIONS: frozenset({OperatorAction}),
}

Document = dict[str, Any]


@pytest.fixture(scope="module")
def document() -> Document:
    loaded = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _name(pointer: str) -> str:
    return pointer.rsplit("/", 1)[1]


def _models(payload: Document, schemas: Document) -> set[str]:
    """The model schemas a payload stands for, through references and unions."""
    if "$ref" in payload:
        return _models(schemas[_name(payload["$ref"])], schemas)
    if "oneOf" in payload:
        return {name for option in payload["oneOf"] for name in _models(option, schemas)}
    return {payload["title"]}


def _endpoints(document: Document, topic: Topic) -> list[tuple[str, set[str]]]:
    """(action, models) for every operation on the topic."""
    schemas = document["components"]["schemas"]
    found = []
    for operation in document["operations"].values():
        channel = document["channels"][_name(operation["channel"]["$ref"])]
        if channel["address"] != topic:
            continue
        for reference in channel["messages"].values():
            message = document["components"]["messages"][_name(reference["$ref"])]
            found.append((operation["action"], _models(message["payload"], schemas)))
    return found


def test_the_checked_in_document_is_what_the_apps_declare() -> None:
    assert render() == DOCUMENT.read_text(encoding="utf-8"), (
        "docs/asyncapi.yaml differs from what the apps and contracts declare: run `make asyncapi`"
    )


def test_every_topic_is_a_channel_with_senders_and_receivers(document: Document) -> None:
    actions: dict[str, set[str]] = {}
    for operation in document["operations"].values():
        channel = document["channels"][_name(operation["channel"]["$ref"])]
        actions.setdefault(channel["address"], set()).add(operation["action"])
    assert actions == {topic.value: {"send", "receive"} for topic in ALL_TOPICS}


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_each_topic_carries_its_event_models(document: Document, topic: Topic) -> None:
    expected = {model.__name__ for model in CARRIED[topic]}
    endpoints = _endpoints(document, topic)
    sent = {name for action, models in endpoints if action == "send" for name in models}
    received = [models for action, models in endpoints if action == "receive"]
    assert sent == expected
    assert received
    assert received == [expected] * len(received)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_event_model_is_documented_as_pydantic_validates_it(
    document: Document, event_type: str
) -> None:
    model = EVENT_TYPES[event_type]
    schemas = document["components"]["schemas"]
    expected = model.model_json_schema(ref_template=REF_TEMPLATE)
    nested = expected.pop("$defs", {})
    assert schemas[model.__name__] == expected
    assert {name: schemas[name] for name in nested} == nested


def test_change_events_have_every_change_event_field(document: Document) -> None:
    schemas = document["components"]["schemas"]
    for model in CHANGES:
        assert set(ChangeEvent.model_fields) <= set(schemas[model.__name__]["properties"])


def _specification(broker: KafkaBroker) -> ApplicationSchema:
    spec = AsyncAPI(broker).to_specification()
    assert isinstance(spec, ApplicationSchema)
    in_name_order(spec)
    return spec


def test_a_handler_typed_against_its_topic_is_refused() -> None:
    broker = KafkaBroker()
    broker.publisher(Topic.VISMA_CHANGES, schema=ChangeEvents, title="visma.changes:Sender")

    @broker.subscriber(Topic.VISMA_CHANGES)
    async def on_change(result: DeliveryResult) -> None:
        del result

    with pytest.raises(DocumentError, match="takes DeliveryResult"):
        receive_what_is_sent(_specification(broker))


def test_a_topic_nobody_sends_on_is_refused() -> None:
    broker = KafkaBroker()
    broker.subscriber(Topic.BASWARE_RESULTS, title="basware.results:Reader")
    with pytest.raises(DocumentError, match="where nothing is sent"):
        receive_what_is_sent(_specification(broker))

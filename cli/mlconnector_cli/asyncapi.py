"""`python -m mlconnector_cli.asyncapi [OUT]`: the AsyncAPI document of the Kafka topics and
their events, built from the five FastStream apps (`make asyncapi` writes docs/asyncapi.yaml).

A tool for developers, run by `make asyncapi` and checked by tests/unit/test_asyncapi.py, not
an operator's: so a module of its own rather than an `mlconnector` command.

Creating the apps connects to nothing, and neither does this. FastStream documents what it
sees: a subscriber by its handler's typed arguments, a publisher by its declared schema. This
module declares what it cannot see:
- the services publish through `publish_events`, not publisher objects: each sender is
  declared on its app's broker with the events it sends;
- the writer and the invoice follow-up decode raw batches, and audit-store reads with its own
  aiokafka consumer: a subscriber receives what the senders on its topic send, checked
  against its handler's type where FastStream found one.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import typer
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.v3_0_0.schema import (
    ApplicationSchema,
    Channel,
    Message,
    Reference,
)
from faststream.specification.asyncapi.v3_0_0.schema.operations import Action
from pydantic import BaseModel, RootModel

from audit_store.app import create_app as create_audit_store
from audit_store.settings import AuditSettings
from basware_writer.app import create_app as create_writer
from basware_writer.settings import WriterSettings
from invoice_follow_up.app import create_app as create_follow_up
from invoice_follow_up.settings import FollowUpSettings
from mlconnector.contracts import (
    AnyChange,
    BaswareNotification,
    DeliveryResult,
    InvoiceStatusChanged,
    MalformedMessage,
    OperatorAction,
    UnreadableRecord,
    VismaNotification,
)
from mlconnector.kafka import (
    HEADER_CORRELATION_ID,
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_REPLAY_OF,
    HEADER_REPLAY_REASON,
    HEADER_SCHEMA_VERSION,
)
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import ALL_TOPICS, Topic
from reconciler.app import create_app as create_reconciler
from reconciler.settings import ReconcilerSettings
from visma_reader.app import create_app as create_reader
from visma_reader.settings import ReaderSettings
from webhook_gateway.app import create_app as create_gateway
from webhook_gateway.settings import GatewaySettings

DOCUMENT = Path("docs/asyncapi.yaml")

DESCRIPTION = (
    "The Kafka topics of ml-connector and the events on them, generated from the FastStream "
    "apps by `make asyncapi`. A message's body is one event as JSON. Its headers name it: "
    f"`{HEADER_EVENT_TYPE}` says which of the channel's payload models the body is, with "
    f"`{HEADER_EVENT_ID}`, `{HEADER_SCHEMA_VERSION}`, `{HEADER_CORRELATION_ID}` and, on "
    f"replays, `{HEADER_REPLAY_OF}` (with `{HEADER_REPLAY_REASON}` when a service replays: "
    '"broker lost").'
)


class ChangeEvents(RootModel[AnyChange]):
    """A change event of any entity; its `entity` says which."""


class DocumentError(Exception):
    """The apps disagree with the senders declared here, or read a topic nobody sends on."""


def app_broker(app: AsgiFastStream) -> KafkaBroker:
    broker = app.broker
    if not isinstance(broker, KafkaBroker):
        raise DocumentError(f"{app} has no Kafka broker")
    return broker


def sends(
    broker: KafkaBroker, topic: str, sender: str, payload: type[BaseModel], description: str
) -> None:
    broker.publisher(topic, schema=payload, title=f"{topic}:{sender}", description=description)


def documented_brokers() -> list[KafkaBroker]:
    """The apps' brokers (the console's too), their senders and audit-store's consumer."""
    # Defaults, not the environment: the document is the same wherever it is generated.
    kafka = KafkaSettings.model_construct()
    database = DatabaseSettings.model_construct()
    reader = ReaderSettings.model_construct()
    writer = WriterSettings.model_construct()
    gateway = GatewaySettings.model_construct()
    follow_up = FollowUpSettings.model_construct()
    reconciler = ReconcilerSettings.model_construct()

    reader_broker = app_broker(create_reader(kafka, database, reader))
    sends(
        reader_broker,
        reader.changes_topic,
        "VismaReader",
        ChangeEvents,
        "Each Visma record the reader finds new or changed, keyed tenant:supplier-number.",
    )
    sends(
        reader_broker,
        reader.changes_topic,
        "VismaReaderUnreadable",
        UnreadableRecord,
        "A Visma record that does not read (a field fails its model), by field, never by "
        "value: its state is malformed until Visma holds a version that reads.",
    )
    writer_broker = app_broker(create_writer(kafka, database, writer))
    sends(
        writer_broker,
        writer.results_topic,
        "BaswareWriter",
        DeliveryResult,
        "What Basware did with each change event, keyed tenant:supplier-number.",
    )
    sends(
        writer_broker,
        writer.results_topic,
        "BaswareWriterMalformed",
        MalformedMessage,
        "A message on visma.changes the writer could not read: its topic, partition, offset "
        "and the fields that failed; a state of its own in the audit log.",
    )
    gateway_broker = app_broker(create_gateway(kafka, database, gateway).service)
    sends(
        gateway_broker,
        gateway.topics.visma_notifications,
        "VismaWebhook",
        VismaNotification,
        "Each verified Visma webhook: a hint for the reader to poll now.",
    )
    sends(
        gateway_broker,
        gateway.topics.basware_events,
        "BaswareWebhook",
        BaswareNotification,
        "Each verified Basware webhook (a task notification).",
    )
    follow_up_broker = app_broker(create_follow_up(kafka, database, follow_up))
    sends(
        follow_up_broker,
        follow_up.topics.invoice_status,
        "InvoiceFollowUp",
        InvoiceStatusChanged,
        "Each new state of an uploaded invoice in Basware, found by the invoice follow-up.",
    )

    reconciler_broker = app_broker(create_reconciler(kafka, database, reconciler))
    sends(
        reconciler_broker,
        reconciler.changes_topic,
        "ReconcilerHeal",
        ChangeEvents,
        "With RECONCILER_HEAL: the current Visma version of each record Basware lacks or holds "
        "differently, as a replay (replay-of, replay-reason: reconcile) with resend set.",
    )

    audit_topics = ALL_TOPICS
    audit_broker = app_broker(
        create_audit_store(kafka, database, AuditSettings.model_construct(), audit_topics)
    )
    for topic in audit_topics:
        audit_broker.subscriber(
            topic,
            title=f"{topic}:AuditStore",
            description="Every message, kept in the immutable log in PostgreSQL.",
        )
    sends(
        audit_broker,
        Topic.VISMA_CHANGES,
        "AuditReplay",
        ChangeEvents,
        "Change events replayed from the log (`mlconnector replay`), with a replay-of header; "
        "also `mlconnector reconcile --heal` (replay-reason: reconcile).",
    )
    # The console publishes with its own producer (its outbox); a broker only to declare it.
    console_broker = KafkaBroker()
    sends(
        console_broker,
        Topic.OPERATOR_ACTIONS,
        "Console",
        OperatorAction,
        "What a person did (login, connection added, schedule changed, replay), and who.",
    )
    sends(
        console_broker,
        Topic.VISMA_CHANGES,
        "ConsoleReplay",
        ChangeEvents,
        "Change events an operator replays from the log in the console, as `mlconnector replay`.",
    )
    sends(
        console_broker,
        Topic.VISMA_NOTIFICATIONS,
        "ConsolePoll",
        VismaNotification,
        "An operator's request that the reader poll an entity now (a fixed record read again).",
    )
    return [
        reader_broker,
        writer_broker,
        gateway_broker,
        follow_up_broker,
        reconciler_broker,
        audit_broker,
        console_broker,
    ]


def _target(reference: Reference | Channel | Message | str) -> str:
    """The name a `#/components/...` or `#/channels/...` reference points at."""
    if not isinstance(reference, str | Reference):
        raise DocumentError(f"expected a reference, found {reference!r}")
    pointer = reference if isinstance(reference, str) else reference.ref
    return unquote(pointer.rsplit("/", 1)[1])


def _inferred(schema: dict[str, Any]) -> bool:
    """False for FastStream's stand-ins: a handler without a body argument (`EmptyPayload`,
    type null) and a subscriber without a handler (a title only)."""
    return schema.get("type") != "null" and set(schema) != {"title"}


def in_name_order(spec: ApplicationSchema) -> None:
    """Sorts what FastStream lists in the order of its brokers' endpoint sets (not the order
    they were declared in), so that the document is the same on every run."""
    if spec.components is None or spec.components.messages is None:
        raise DocumentError("the apps declare no messages")
    spec.channels = dict(sorted(spec.channels.items()))
    spec.operations = dict(sorted(spec.operations.items()))
    spec.components.messages = dict(sorted(spec.components.messages.items()))
    spec.components.schemas = dict(sorted((spec.components.schemas or {}).items()))


def receive_what_is_sent(spec: ApplicationSchema) -> None:
    """Gives each subscriber's message the payload of the senders on its topic."""
    if spec.components is None or spec.components.messages is None:
        raise DocumentError("the apps declare no messages")
    messages = spec.components.messages
    schemas = spec.components.schemas or {}
    endpoints: dict[Action, list[tuple[str, Message]]] = {Action.SEND: [], Action.RECEIVE: []}
    for operation in spec.operations.values():
        channel = spec.channels[_target(operation.channel)]
        address = channel.address or ""
        for reference in channel.messages.values():
            endpoints[operation.action].append((address, messages[_target(reference)]))

    sent: dict[str, list[dict[str, Any]]] = {}
    for address, message in endpoints[Action.SEND]:
        payloads = sent.setdefault(address, [])
        if message.payload not in payloads:
            payloads.append(message.payload)

    stand_ins: set[str] = set()
    for address, message in endpoints[Action.RECEIVE]:
        if address not in sent:
            raise DocumentError(f"{message.title} reads {address}, where nothing is sent")
        carried = sent[address][0] if len(sent[address]) == 1 else {"oneOf": sent[address]}
        found = _target(message.payload["$ref"])
        if not _inferred(schemas[found]):
            stand_ins.add(found)
        elif message.payload != carried:
            raise DocumentError(f"{message.title} takes {found}, but {address} carries {carried}")
        message.payload = carried
    for name in stand_ins:
        del schemas[name]


def specification() -> ApplicationSchema:
    factory = AsyncAPI(
        *documented_brokers(),
        title="ml-connector",
        version=version("mlconnector"),
        description=DESCRIPTION,
    )
    spec = factory.to_specification()
    if not isinstance(spec, ApplicationSchema):
        raise DocumentError(f"expected an AsyncAPI 3 document, got {type(spec).__name__}")
    in_name_order(spec)
    receive_what_is_sent(spec)
    return spec


def render() -> str:
    return specification().to_yaml()


def main(
    out: Annotated[Path, typer.Argument(help="Where the YAML document goes.")] = DOCUMENT,
) -> None:
    out.write_text(render(), encoding="utf-8")
    typer.echo(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)

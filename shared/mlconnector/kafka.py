"""Kafka plumbing shared by the services: broker factory, topics, event (de)serialisation."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.message import StreamMessage
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import BaseModel, ConfigDict, ValidationError

from mlconnector.contracts import (
    EVENT_TYPES,
    Event,
    MalformedMessage,
    malformed_message_id,
    parse_event,
)
from mlconnector.field_problems import FieldProblem, field_problems
from mlconnector.settings import KafkaSecurityProtocol, KafkaSettings, SaslMechanism
from mlconnector.topics import ALL_TOPICS

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

HEADER_EVENT_ID = "event-id"
HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_CORRELATION_ID = "correlation-id"
HEADER_REPLAY_OF = "replay-of"
# Why a replay was published when no person asked for it: "broker lost", or "reconcile"
# (Basware differed).
HEADER_REPLAY_REASON = "replay-reason"


def event_headers(
    event: Event,
    *,
    correlation_id: str | None = None,
    replay_of: str | None = None,
    replay_reason: str | None = None,
) -> dict[str, str]:
    headers = {
        HEADER_EVENT_ID: event.event_id,
        HEADER_EVENT_TYPE: event.event_type,
        HEADER_SCHEMA_VERSION: str(event.schema_version),
        HEADER_CORRELATION_ID: correlation_id or event.event_id,
    }
    if replay_of:
        headers[HEADER_REPLAY_OF] = replay_of
    if replay_reason:
        headers[HEADER_REPLAY_REASON] = replay_reason
    return headers


def event_from_message(headers: Mapping[str, Any], body: bytes) -> Event:
    """Reads an event from a Kafka message; raises ValueError/KeyError for a malformed one."""
    raw = headers.get(HEADER_EVENT_TYPE)
    event_type = raw.decode() if isinstance(raw, bytes) else raw
    if not event_type:
        raise ValueError("message has no event-type header")
    return parse_event(str(event_type), body)


async def raw_batch(message: StreamMessage[tuple[ConsumerRecord[bytes, bytes], ...]]) -> None:
    """A batch subscriber's decoder that decodes nothing: the handler gives the records of
    `message.raw_message` to `decode_batch`, so one bad body never fails the whole batch."""
    return None


EventT = TypeVar("EventT", bound=Event)


class UnreadableMessage(BaseModel):
    """A message that holds no readable event: where it is and why, never its body."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int
    reason: str
    event_id: str | None = None
    event_type: str | None = None
    problems: tuple[FieldProblem, ...] = ()
    # What the body names, when it is a JSON object with these fields as text.
    named: dict[str, str] = {}

    def malformed(self) -> MalformedMessage:
        """The message as the state of its own the audit log shows."""
        named = self.named
        return MalformedMessage(
            event_id=malformed_message_id(self.topic, self.partition, self.offset),
            tenant=named.get("tenant", ""),
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            message_event_id=self.event_id,
            message_event_type=self.event_type,
            entity=named.get("entity"),
            entity_id=named.get("entity_id"),
            supplier_number=named.get("supplier_number"),
            change_event_id=named.get("event_id"),
            content_hash=named.get("content_hash"),
            problems=self.problems or (FieldProblem(field="event-type", problem=self.reason),),
        )


class DecodedBatch(BaseModel, Generic[EventT]):
    model_config = ConfigDict(frozen=True)

    events: tuple[EventT, ...] = ()
    unreadable: tuple[UnreadableMessage, ...] = ()


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    for header, value in record.headers:
        if header == name and isinstance(value, bytes):
            return value.decode(errors="replace")
    return ""


# Fields of a change's body that say which record it is about.
_NAMING_FIELDS = ("tenant", "entity", "entity_id", "supplier_number", "event_id", "content_hash")


def _named(value: bytes | None) -> dict[str, str]:
    try:
        body = json.loads(value or b"")
    except (ValueError, RecursionError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {f: body[f] for f in _NAMING_FIELDS if isinstance(body.get(f), str) and body[f]}


def _unreadable(
    record: ConsumerRecord[bytes, bytes],
    reason: str,
    problems: tuple[FieldProblem, ...] = (),
) -> UnreadableMessage:
    return UnreadableMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=reason,
        event_id=_header(record, HEADER_EVENT_ID) or None,
        event_type=_header(record, HEADER_EVENT_TYPE) or None,
        problems=problems,
        named=_named(record.value),
    )


def _problems_text(event_type: str, problems: tuple[FieldProblem, ...]) -> str:
    return f"{event_type} " + "; ".join(f"{p.field}: {p.problem}" for p in problems)


def decode_batch(
    records: Sequence[ConsumerRecord[bytes, bytes]], wanted: Collection[type[EventT]]
) -> DecodedBatch[EventT]:
    """The events of the `wanted` types in a raw batch (see `raw_batch`), in order.

    The event-type header is read before the body, so a message of another known type (most
    of visma.changes, for a consumer of invoices) is passed over without being parsed. A
    message without a known event type, or whose body does not validate, is unreadable."""
    models = {model.event_type: model for model in wanted}
    events: list[EventT] = []
    unreadable: list[UnreadableMessage] = []
    for record in records:
        event_type = _header(record, HEADER_EVENT_TYPE)
        model = models.get(event_type)
        if model is None:
            if event_type not in EVENT_TYPES:
                unreadable.append(_unreadable(record, f"unknown event type {event_type!r}"))
            continue
        try:
            events.append(model.model_validate_json(record.value or b""))
        except ValidationError as error:
            problems = field_problems(error)
            unreadable.append(_unreadable(record, _problems_text(event_type, problems), problems))
    return DecodedBatch[EventT](events=tuple(events), unreadable=tuple(unreadable))


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """How a client proves who it is: FastStream's form of KAFKA_SECURITY_PROTOCOL and
    KAFKA_SASL_*; None for PLAINTEXT (the embedded broker, tests)."""
    if settings.security_protocol is KafkaSecurityProtocol.PLAINTEXT:
        return None
    use_ssl = settings.security_protocol is KafkaSecurityProtocol.SASL_SSL
    context = (
        ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile is not None else None
        )
        if use_ssl
        else None
    )
    scram = SASLScram256 if settings.sasl_mechanism is SaslMechanism.SCRAM_SHA_256 else SASLScram512
    return scram(
        username=settings.sasl_username or "",
        password=settings.password().get_secret_value(),
        use_ssl=use_ssl,
        ssl_context=context,
    )


def client_security(settings: KafkaSettings) -> dict[str, Any]:
    """The same as aiokafka keyword arguments, for the clients made without FastStream
    (admin, audit-store's consumer, the replay producer)."""
    return parse_security(broker_security(settings))


def make_broker(settings: KafkaSettings, *, client_id: str) -> KafkaBroker:
    # The embedded broker offers no idempotent producer (docs/event-broker.md §3.1): exactly-once
    # comes from idempotent keys and consumer-side dedupe instead.
    return KafkaBroker(
        settings.bootstrap_servers,
        security=broker_security(settings),
        client_id=client_id,
        enable_idempotence=False,
        acks="all",
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_size,
        logger=logging.getLogger(f"faststream.{client_id}"),
    )


def consumer_tuning(settings: KafkaSettings) -> dict[str, Any]:
    """What every consumer takes from KAFKA_*, FastStream subscriber or plain aiokafka alike:
    group timing, fetch wait and how much it fetches ahead of its handler. Also the offset
    reset: "latest" can point inside the last batch on the embedded broker
    (docs/event-broker.md §3.2), so consumers start at the earliest offset and dedupe by event id
    instead."""
    return {
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "max_partition_fetch_bytes": settings.max_partition_fetch_bytes,
        "fetch_max_bytes": settings.fetch_max_bytes,
    }


def consumer_options(settings: KafkaSettings) -> dict[str, Any]:
    """Subscriber options every consumer group uses: manual acks and `consumer_tuning`."""
    return {"ack_policy": AckPolicy.MANUAL, **consumer_tuning(settings)}


async def publish_events(
    broker: KafkaBroker,
    topic: str,
    events: Sequence[Event],
    *,
    correlation_id: str | None = None,
    replay_of: str | None = None,
) -> None:
    """Publishes events keyed by their key rule and returns once Kafka acknowledged all of them."""
    pending = [
        await broker.publish(
            event.model_dump_json().encode(),
            topic,
            key=event.key.encode(),
            headers=event_headers(event, correlation_id=correlation_id, replay_of=replay_of),
            no_confirm=True,
        )
        for event in events
    ]
    await asyncio.gather(*pending)


async def ensure_topics(settings: KafkaSettings, topics: Sequence[str] = ALL_TOPICS) -> None:
    """Creates topics with their final partition count: the embedded broker cannot grow them."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **client_security(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(t, num_partitions=settings.partitions, replication_factor=1)
                        for t in missing
                    ]
                )
            except TopicAlreadyExistsError:
                log.debug("topics created concurrently: %s", missing)
    finally:
        await admin.close()

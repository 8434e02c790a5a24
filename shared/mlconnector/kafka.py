"""Kafka plumbing shared by the services: broker factory, topics, event (de)serialisation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from mlconnector.contracts import Event, parse_event
from mlconnector.settings import KafkaSettings
from mlconnector.topics import ALL_TOPICS

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

HEADER_EVENT_ID = "event-id"
HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_CORRELATION_ID = "correlation-id"
HEADER_REPLAY_OF = "replay-of"


def event_headers(
    event: Event, *, correlation_id: str | None = None, replay_of: str | None = None
) -> dict[str, str]:
    headers = {
        HEADER_EVENT_ID: event.event_id,
        HEADER_EVENT_TYPE: event.event_type,
        HEADER_SCHEMA_VERSION: str(event.schema_version),
        HEADER_CORRELATION_ID: correlation_id or event.event_id,
    }
    if replay_of:
        headers[HEADER_REPLAY_OF] = replay_of
    return headers


def event_from_message(headers: Mapping[str, Any], body: bytes) -> Event:
    """Reads an event from a Kafka message; raises ValueError/KeyError for a malformed one."""
    raw = headers.get(HEADER_EVENT_TYPE)
    event_type = raw.decode() if isinstance(raw, bytes) else raw
    if not event_type:
        raise ValueError("message has no event-type header")
    return parse_event(str(event_type), body)


async def raw_batch(message: StreamMessage[tuple[ConsumerRecord[bytes, bytes], ...]]) -> None:
    """A batch subscriber's decoder that decodes nothing: the handler reads each record of
    `message.raw_message` itself (`decode_batch`), so one bad body never fails the batch."""
    return None


RawRecord: TypeAlias = ConsumerRecord[bytes, bytes]
Unreadable = Callable[[RawRecord, Exception], None]


def decode_batch(records: Sequence[RawRecord], kind: type[E], unreadable: Unreadable) -> list[E]:
    """The events of a raw batch, in order, that are of `kind`; every other message goes to
    `unreadable` with why."""
    events: list[E] = []
    for record in records:
        try:
            event = event_from_message(dict(record.headers), record.value or b"")
        except (KeyError, ValueError, ValidationError) as exc:
            unreadable(record, exc)
            continue
        if isinstance(event, kind):
            events.append(event)
        else:
            unreadable(record, TypeError(f"{event.event_type} is no {kind.__name__}"))
    return events


def make_broker(settings: KafkaSettings, *, client_id: str) -> KafkaBroker:
    # The embedded broker offers no idempotent producer (docs/broker.md §3.1): exactly-once
    # comes from idempotent keys and consumer-side dedupe instead.
    return KafkaBroker(
        settings.bootstrap_servers,
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
    (docs/broker.md §3.2), so consumers start at the earliest offset and dedupe by event id
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
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
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

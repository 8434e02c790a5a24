"""What one Kafka message becomes in the log, and the hash that chains it to its partition.

Pure functions, no I/O. A row has two parts:
- what arrived (topic, partition, offset, key, headers, value, Kafka timestamp, arrival time):
  stored byte for byte and hashed into the chain of its (topic, partition);
- what is derived from it (event id, type, tenant, entity, payload as JSON, event time):
  stored for queries, never hashed, and recomputed by verify, which compares.
So a row changed anywhere is found: in the arrived part by its hash, in the derived part
by the comparison.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlconnector.contracts import (
    BaswareNotification,
    Entity,
    InvoiceStatusChanged,
    VismaNotification,
)
from mlconnector.kafka import (
    HEADER_CORRELATION_ID,
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_REPLAY_OF,
)

# The hash a chain starts from, before its first row.
GENESIS_HASH = bytes(32)
# Versions the canonical content: a new layout gets a new tag, old rows keep verifying.
ROW_FORMAT = b"mlconnector-audit-row/1"
# A longer event-id header is not an id we wrote: the row gets a synthetic id instead.
MAX_EVENT_ID_LENGTH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL_FIELD = b"\xff\xff\xff\xff"

# Which payload field names the record an event is about, when it is not `entity_id`.
_RECORD_ID_FIELD: dict[str, str] = {
    VismaNotification.event_type: "record_key",
    BaswareNotification.event_type: "document_id",
}
# Events whose entity is implied by their type rather than carried in a field.
_IMPLIED_ENTITY: dict[str, Entity] = {InvoiceStatusChanged.event_type: Entity.SUPPLIER_INVOICE}


class ReceivedMessage(BaseModel):
    """One Kafka message as audit-store read it: the part of a row that is hashed."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int
    key: bytes | None
    # Kafka allows a header without a value (None).
    headers: tuple[tuple[str, bytes | None], ...]
    value: bytes | None
    kafka_time: datetime | None
    arrived_at: datetime


class DerivedFields(BaseModel):
    """What the log stores beside a message for queries, all computed from the message."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str | None
    replay_of: str | None
    correlation_id: str | None
    # The value as JSON text that PostgreSQL accepts as jsonb; None when it is not JSON.
    payload: str | None
    tenant: str | None
    entity: str | None
    entity_id: str | None
    event_time: datetime


class LogEntry(BaseModel):
    """A row ready to be chained: the message and what is derived from it."""

    model_config = ConfigDict(frozen=True)

    message: ReceivedMessage
    derived: DerivedFields

    @property
    def chain(self) -> tuple[str, int]:
        return (self.message.topic, self.message.partition)


def kafka_timestamp(milliseconds: int | None) -> datetime | None:
    """Kafka's timestamp; None when absent (-1) or beyond what a datetime holds."""
    if milliseconds is None or milliseconds < 0:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:
        return None


def synthetic_event_id(topic: str, partition: int, offset: int) -> str:
    """The id of a message that carries none: its place in Kafka, the same on every re-read."""
    return f"kafka:{topic}/{partition}/{offset}"


def _clean_text(value: str) -> str | None:
    # PostgreSQL text cannot hold NUL; an empty value names nothing.
    value = value.strip()
    return value if value and "\x00" not in value else None


def header_text(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | None:
    """The last value of a header as text; None when absent, empty or not UTF-8."""
    for header, raw in reversed(headers):
        if header == name:
            if raw is None:
                return None
            try:
                return _clean_text(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return None
    return None


def _encode_header_part(raw: bytes | None) -> str | dict[str, str] | None:
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return {"base64": base64.b64encode(raw).decode()}
    return text


def _decode_header_part(part: str | dict[str, str] | None) -> bytes | None:
    if part is None:
        return None
    if isinstance(part, dict):
        return base64.b64decode(part["base64"])
    return part.encode("utf-8")


# One encoder for every row: json.dumps with options builds a new one per call.
_HEADERS_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), sort_keys=True)


def headers_json(headers: Sequence[tuple[str, bytes | None]]) -> str:
    """Headers as a JSON array of [name, value] pairs, in the order sent, duplicates kept.

    Values that are not NUL-free UTF-8 become {"base64": ...} and absent ones null, so the
    array is valid jsonb and reads back to the same bytes.
    """
    return _HEADERS_ENCODER.encode(
        [
            [_encode_header_part(name.encode("utf-8")), _encode_header_part(value)]
            for name, value in headers
        ]
    )


def headers_from_json(text: str) -> tuple[tuple[str, bytes | None], ...]:
    pairs: list[list[Any]] = json.loads(text)
    return tuple(
        ((_decode_header_part(name) or b"").decode("utf-8"), _decode_header_part(value))
        for name, value in pairs
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # jsonb's numeric refuses exponents this large.
        raise ValueError(f"{text} is out of range")
    return value


# One decoder for every row: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
# What jsonb refuses in a text Python's json module accepts: the NUL escape, and
# surrogate escapes when unpaired (paired ones are fine, but rare enough to check slowly).
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def json_payload(value: bytes | None) -> tuple[Any, str] | None:
    """The value parsed as JSON, and a text of it jsonb accepts; None if there is none.

    jsonb refuses NaN, Infinity, huge exponents, NUL characters and lone surrogates, all of
    which Python's json module lets through: such a value is stored as bytes only, never
    dropped.
    """
    if value is None:
        return None
    try:
        text = value.decode("utf-8")
        parsed = _DECODER.decode(text)
        if not _RISKY_ESCAPE.search(text):
            return parsed, text
        text = json.dumps(parsed, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return None
    if "\\u0000" in text:
        return None
    return parsed, text


def _text_field(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return _clean_text(value) if isinstance(value, str) else None


def _event_time(payload: Mapping[str, Any], fallback: datetime) -> datetime:
    raw = payload.get("occurred_at")
    if not isinstance(raw, str):
        return fallback
    try:
        moment = datetime.fromisoformat(raw)
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        # A time that falls outside year 1 to 9999 in UTC would not read back from PostgreSQL.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return fallback


def derive(message: ReceivedMessage) -> DerivedFields:
    """Everything the log stores beside the message; deterministic, so verify can redo it."""
    parsed = json_payload(message.value)
    payload: Mapping[str, Any] = parsed[0] if parsed and isinstance(parsed[0], dict) else {}
    headers = message.headers
    event_type = header_text(headers, HEADER_EVENT_TYPE)
    event_id = header_text(headers, HEADER_EVENT_ID) or _text_field(payload, "event_id")
    if event_id is None or len(event_id) > MAX_EVENT_ID_LENGTH:
        event_id = synthetic_event_id(message.topic, message.partition, message.offset)
    implied = _IMPLIED_ENTITY.get(event_type or "")
    return DerivedFields(
        event_id=event_id,
        event_type=event_type,
        replay_of=header_text(headers, HEADER_REPLAY_OF),
        correlation_id=header_text(headers, HEADER_CORRELATION_ID),
        payload=parsed[1] if parsed else None,
        tenant=_text_field(payload, "tenant"),
        entity=implied.value if implied else _text_field(payload, "entity"),
        entity_id=_text_field(payload, _RECORD_ID_FIELD.get(event_type or "", "entity_id")),
        event_time=_event_time(payload, message.kafka_time or message.arrived_at),
    )


def log_entry(message: ReceivedMessage) -> LogEntry:
    return LogEntry(message=message, derived=derive(message))


def _microseconds(moment: datetime | None) -> bytes | None:
    if moment is None:
        return None
    return str((moment - _EPOCH) // timedelta(microseconds=1)).encode()


def canonical_content(message: ReceivedMessage, position: int) -> bytes:
    """The bytes a row's hash covers: every arrived field, length-prefixed, so none can
    be shifted into its neighbour, and the row's place in its chain."""
    fields: tuple[bytes | None, ...] = (
        ROW_FORMAT,
        message.topic.encode(),
        str(message.partition).encode(),
        str(message.offset).encode(),
        str(position).encode(),
        message.key,
        headers_json(message.headers).encode(),
        message.value,
        _microseconds(message.kafka_time),
        _microseconds(message.arrived_at),
    )
    return b"".join(_NULL_FIELD if f is None else len(f).to_bytes(4, "big") + f for f in fields)


def chain_hash(previous: bytes, message: ReceivedMessage, position: int) -> bytes:
    """sha256(previous row's hash || this row's canonical content)."""
    return hashlib.sha256(previous + canonical_content(message, position)).digest()

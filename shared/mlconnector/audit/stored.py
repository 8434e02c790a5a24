"""Rows as PostgreSQL returns them, for verify, lineage and replay to read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel, ConfigDict

from mlconnector.audit.rows import DerivedFields, ReceivedMessage, headers_from_json

# Every column of audit_log but seq, in the order the recorder copies them.
LOG_COLUMNS = (
    "topic",
    "kafka_partition",
    "kafka_offset",
    "message_key",
    "headers",
    "body",
    "kafka_time",
    "arrived_at",
    "chain_position",
    "row_hash",
    "event_id",
    "event_type",
    "replay_of",
    "correlation_id",
    "payload",
    "tenant",
    "entity",
    "entity_id",
    "event_time",
)
SELECT_ROW = f"SELECT seq, {', '.join(LOG_COLUMNS)} FROM audit_log"  # noqa: S608 (constants)

# asyncpg is generic only in its stubs: the alias stays a string at runtime.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


class StoredRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    message: ReceivedMessage
    chain_position: int
    row_hash: bytes
    derived: DerivedFields

    @property
    def event_id(self) -> str:
        return self.derived.event_id

    @property
    def root_event_id(self) -> str:
        """The first event of a replay chain: the original a replay (of a replay) stands for."""
        return self.derived.replay_of or self.derived.event_id


def stored_row(record: Mapping[str, Any]) -> StoredRow:
    return StoredRow(
        seq=record["seq"],
        message=ReceivedMessage(
            topic=record["topic"],
            partition=record["kafka_partition"],
            offset=record["kafka_offset"],
            key=record["message_key"],
            headers=headers_from_json(record["headers"]),
            value=record["body"],
            kafka_time=record["kafka_time"],
            arrived_at=record["arrived_at"],
        ),
        chain_position=record["chain_position"],
        row_hash=record["row_hash"],
        derived=DerivedFields(
            event_id=record["event_id"],
            event_type=record["event_type"],
            replay_of=record["replay_of"],
            correlation_id=record["correlation_id"],
            payload=record["payload"],
            tenant=record["tenant"],
            entity=record["entity"],
            entity_id=record["entity_id"],
            event_time=record["event_time"],
        ),
    )


async def fetch_rows(conn: Connection, where: str, *args: Any) -> list[StoredRow]:
    """Rows matching a WHERE clause written in this package (never user text)."""
    return [stored_row(r) for r in await conn.fetch(f"{SELECT_ROW} {where}", *args)]

"""Chains built in memory, as the recorder would store them, for verify's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from audit_store.recorder import chained_records
from mlconnector.audit.rows import GENESIS_HASH, ReceivedMessage, log_entry
from mlconnector.audit.stored import LOG_COLUMNS, StoredRow

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
VALUE = b'{"tenant": "t", "entity": "supplier", "entity_id": "S1", "n": 1.0}'
Heads = dict[tuple[str, int], tuple[int, bytes]]


def chain(partition: int, count: int, seq: int = 1) -> tuple[list[StoredRow], Heads]:
    entries = [
        log_entry(
            ReceivedMessage(
                topic="visma.changes",
                partition=partition,
                offset=offset,
                key=b"t:S1",
                headers=(("event-id", f"e{partition}-{offset}".encode()),),
                value=VALUE,
                kafka_time=NOW,
                arrived_at=NOW,
            )
        )
        for offset in range(count)
    ]
    heads: Heads = {("visma.changes", partition): (0, GENESIS_HASH)}
    records, heads = chained_records(entries, heads)
    position, row_hash = LOG_COLUMNS.index("chain_position"), LOG_COLUMNS.index("row_hash")
    rows = [
        StoredRow(
            seq=seq + i,
            message=e.message,
            chain_position=r[position],
            row_hash=r[row_hash],
            derived=e.derived,
        )
        for i, (e, r) in enumerate(zip(entries, records, strict=True))
    ]
    return rows, heads

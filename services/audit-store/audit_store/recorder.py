"""Appends batches of messages to the log: once per event id, chained per partition.

One transaction per batch: lock the head of every chain the batch touches (so concurrent
writers of one partition take turns and each row links to the row truly before it), claim
the batch's event ids in audit_event_id (the ones already there are dropped), COPY the new
rows, move the heads, and recompute the state of the records the new rows are about
(audit-store migration 007). The caller commits Kafka offsets only after this returns.

The log is partitioned by month of arrival, and a partitioned table cannot hold an event id
unique across its months: audit_event_id, one table, holds each id once, and two writers
claiming one id take turns on its key. A row whose month has no partition yet (audit-store
makes them ahead, audit_store/partitions.py) makes the recorder add that month's and write
the batch again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any

import asyncpg
from pydantic import BaseModel

from audit_store.partitions import add_partitions
from mlconnector.audit.rows import GENESIS_HASH, LogEntry, chain_hash, headers_json
from mlconnector.audit.stored import LOG_COLUMNS

log = logging.getLogger(__name__)


class AppendReport(BaseModel):
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def first_of_each_event(entries: Iterable[LogEntry]) -> list[LogEntry]:
    """A batch can hold one event twice (published twice): the lower offset wins."""
    ordered = sorted(entries, key=lambda e: (e.chain, e.message.offset))
    seen: set[str] = set()
    unique: list[LogEntry] = []
    for entry in ordered:
        if entry.derived.event_id not in seen:
            seen.add(entry.derived.event_id)
            unique.append(entry)
    return unique


def chained_records(
    entries: Sequence[LogEntry], heads: dict[tuple[str, int], tuple[int, bytes]]
) -> tuple[list[tuple[Any, ...]], dict[tuple[str, int], tuple[int, bytes]]]:
    """The COPY records of `entries` (sorted by chain) and the chain heads after them."""
    records: list[tuple[Any, ...]] = []
    moved = dict(heads)
    for chain, group in groupby(entries, key=lambda e: e.chain):
        position, previous = moved[chain]
        for entry in group:
            position += 1
            previous = chain_hash(previous, entry.message, position)
            m, d = entry.message, entry.derived
            records.append(
                (
                    m.topic,
                    m.partition,
                    m.offset,
                    m.key,
                    headers_json(m.headers),
                    m.value,
                    m.kafka_time,
                    m.arrived_at,
                    position,
                    previous,
                    d.event_id,
                    d.event_type,
                    d.replay_of,
                    d.correlation_id,
                    d.payload,
                    d.tenant,
                    d.entity,
                    d.entity_id,
                    d.event_time,
                )
            )
        moved[chain] = (position, previous)
    return records, moved


class Recorder:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, entries: Sequence[LogEntry]) -> AppendReport:
        unique = first_of_each_event(entries)
        try:
            stored = await self._append_once(unique)
        except asyncpg.CheckViolationError:
            # The log has no CHECK of its own: this is a row no partition takes.
            months = {e.message.arrived_at for e in unique}
            log.info("no audit_log partition for %d arrival time(s); adding them", len(months))
            async with self._pool.acquire() as conn:
                await add_partitions(conn, months)
            stored = await self._append_once(unique)
        return AppendReport(received=len(entries), stored=stored)

    async def _append_once(self, entries: Sequence[LogEntry]) -> int:
        if not entries:
            return 0
        chains = sorted({e.chain for e in entries})
        topics = [t for t, _ in chains]
        partitions = [p for _, p in chains]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO audit_chain_head (topic, kafka_partition, chain_position, row_hash)
                SELECT t, p, 0, $3 FROM unnest($1::text[], $2::integer[]) AS c(t, p)
                ON CONFLICT DO NOTHING
                """,
                topics,
                partitions,
                GENESIS_HASH,
            )
            # Sorted, so two writers touching the same chains lock them in the same order.
            head_rows = await conn.fetch(
                """
                SELECT topic, kafka_partition, chain_position, row_hash
                FROM audit_chain_head
                WHERE (topic, kafka_partition) IN
                      (SELECT * FROM unnest($1::text[], $2::integer[]))
                ORDER BY topic, kafka_partition
                FOR UPDATE
                """,
                topics,
                partitions,
            )
            heads = {
                (r["topic"], r["kafka_partition"]): (r["chain_position"], bytes(r["row_hash"]))
                for r in head_rows
            }
            # Sorted, so two writers claiming some of the same ids wait on them in one order.
            claimed = {
                r["event_id"]
                for r in await conn.fetch(
                    """
                    INSERT INTO audit_event_id (event_id)
                    SELECT id FROM unnest($1::text[]) AS b(id) ORDER BY id
                    ON CONFLICT DO NOTHING
                    RETURNING event_id
                    """,
                    [e.derived.event_id for e in entries],
                )
            }
            fresh = [e for e in entries if e.derived.event_id in claimed]
            if not fresh:
                return 0
            records, moved = chained_records(fresh, heads)
            await conn.copy_records_to_table("audit_log", records=records, columns=LOG_COLUMNS)
            changed = [chain for chain in moved if moved[chain] != heads[chain]]
            await conn.execute(
                """
                UPDATE audit_chain_head AS h
                SET chain_position = m.position, row_hash = m.hash
                FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bytea[])
                     AS m(topic, kafka_partition, position, hash)
                WHERE h.topic = m.topic AND h.kafka_partition = m.kafka_partition
                """,
                [t for t, _ in changed],
                [p for _, p in changed],
                [moved[c][0] for c in changed],
                [moved[c][1] for c in changed],
            )
            await conn.execute(
                "SELECT audit_record_state_refresh($1, $2, $3, $4)",
                [e.derived.tenant for e in fresh],
                [e.derived.entity for e in fresh],
                [e.derived.entity_id for e in fresh],
                [e.derived.event_id for e in fresh],
            )
            return len(records)

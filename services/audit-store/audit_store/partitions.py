"""The log's monthly partitions: made ahead of time, and retired once the retention has passed.

audit-store owns both (its role may call the two functions migration 006 made, which run as
the log's owner). Every round (at start, then every `AUDIT_STORE_MAINTENANCE_INTERVAL_SECONDS`)
it makes this month's partition and the next `AUDIT_STORE_PARTITIONS_AHEAD_MONTHS`, so an
append never waits for one. With `AUDIT_STORE_RETENTION_MONTHS` set, each partition whose
whole month is older than that is exported (mlconnector.audit.export), oldest first, and only
then dropped: the database checks that the export holds every row of it and keeps where each
chain's rows in it ended (audit_log_retired), so verify links the live rows to the export.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from mlconnector.audit.export import (
    ExportedChain,
    ExportedRow,
    ExportHeads,
    ExportWriter,
)
from mlconnector.audit.rows import GENESIS_HASH
from mlconnector.audit.stored import SELECT_ROW, Connection

log = logging.getLogger(__name__)

PARTITION_NAME = re.compile(r"^audit_log_(\d{4})_(\d{2})$")
EXPORT_BATCH = 5000


def month_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_month(name: str) -> datetime | None:
    """The first instant of the month a partition holds; None for a name not of that form."""
    found = PARTITION_NAME.match(name)
    return datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC) if found else None


def months_ahead(now: datetime, ahead: int) -> list[datetime]:
    """This month and the `ahead` after it."""
    first = month_start(now)
    return [add_months(first, i) for i in range(ahead + 1)]


def due_for_retirement(names: Iterable[str], now: datetime, retention_months: int) -> list[str]:
    """The partitions whose whole month lies more than `retention_months` before this
    month, oldest first: with 12, on any day of December 2026 the partitions up to
    November 2025 are due, December 2025 on 1 January."""
    cutoff = add_months(month_start(now), -retention_months)
    due = [
        (month, name)
        for name in names
        if (month := partition_month(name)) is not None and add_months(month, 1) <= cutoff
    ]
    return [name for _, name in sorted(due)]


async def add_partitions(conn: Connection, moments: Iterable[datetime]) -> list[str]:
    """The partitions holding these moments, made where missing; their names."""
    names: list[str] = []
    for month in sorted({month_start(m) for m in moments}):
        names.append(await conn.fetchval("SELECT audit_log_partition_for($1)", month))
    return names


async def partition_names(conn: Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1"
    )
    return [r["relname"] for r in rows]


async def _previous_hashes(conn: Connection) -> dict[tuple[str, int], tuple[int, bytes]]:
    """Each chain's last retired row: what the next partition's first row links to."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (topic, kafka_partition) topic, kafka_partition, last_position,"
        " last_hash FROM audit_log_retired"
        " ORDER BY topic, kafka_partition, last_position DESC"
    )
    return {
        (r["topic"], r["kafka_partition"]): (r["last_position"], bytes(r["last_hash"]))
        for r in rows
    }


async def export_partition(conn: Connection, name: str, folder: Path) -> ExportHeads:
    """Writes the partition's rows and heads into `folder`; what the heads file says."""
    month = partition_month(name)
    if month is None:
        raise ValueError(f"{name} is not a partition of the log")
    until = add_months(month, 1)
    writer = await asyncio.to_thread(ExportWriter, folder, name)
    chains: dict[tuple[str, int], ExportedChain] = {}
    rows = 0
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            before = await _previous_hashes(conn)
            query = (
                f"{SELECT_ROW} WHERE arrived_at >= $1 AND arrived_at < $2"
                " ORDER BY topic, kafka_partition, chain_position"
            )
            batch: list[ExportedRow] = []
            async for record in conn.cursor(query, month, until, prefetch=EXPORT_BATCH):
                row = ExportedRow.from_record(record)
                batch.append(row)
                rows += 1
                key = (row.topic, row.kafka_partition)
                chain = chains.get(key)
                if chain is None:
                    chain = chains[key] = ExportedChain(
                        topic=row.topic,
                        partition=row.kafka_partition,
                        first_position=row.chain_position,
                        previous_hash=before.get(key, (0, GENESIS_HASH))[1].hex(),
                        last_position=row.chain_position,
                        last_hash=row.row_hash,
                        rows=0,
                    )
                chain.last_position, chain.last_hash = row.chain_position, row.row_hash
                chain.rows += 1
                if len(batch) >= EXPORT_BATCH:
                    await asyncio.to_thread(writer.write, batch)
                    batch = []
            await asyncio.to_thread(writer.write, batch)
        heads = ExportHeads(
            partition_name=name,
            range_from=month,
            range_to=until,
            rows=rows,
            exported_at=datetime.now(UTC),
            chains=list(chains.values()),
        )
        await asyncio.to_thread(writer.finish, heads)
    except BaseException:
        await asyncio.to_thread(writer.abandon)
        raise
    return heads


async def retire_partition(conn: Connection, name: str, folder: Path) -> int:
    """Exports the partition, then drops it; the rows dropped. The database refuses the drop
    when the export does not hold every row, or the partition is not the oldest."""
    heads = await export_partition(conn, name, folder)
    dropped: int = await conn.fetchval(
        "SELECT audit_log_retire_partition($1, $2)", name, heads.rows
    )
    return dropped


class PartitionKeeper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        ahead: int,
        retention_months: int | None,
        export_folder: Path,
        interval: float,
    ) -> None:
        self._pool = pool
        self._ahead = ahead
        self._retention_months = retention_months
        self._export_folder = export_folder
        self._interval = interval

    async def round(self, now: datetime | None = None) -> list[str]:
        """Makes the partitions ahead, retires what is due; the partitions retired."""
        now = now or datetime.now(UTC)
        retired: list[str] = []
        async with self._pool.acquire() as conn:
            await add_partitions(conn, months_ahead(now, self._ahead))
            if self._retention_months is None:
                return retired
            for name in due_for_retirement(
                await partition_names(conn), now, self._retention_months
            ):
                rows = await retire_partition(conn, name, self._export_folder)
                log.info(
                    "audit_log partition %s retired: %d rows exported to %s, then dropped",
                    name,
                    rows,
                    self._export_folder,
                )
                retired.append(name)
        return retired

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # Appends go on (a missing month's partition is made by the recorder); the
                # next round tries again.
                log.warning("audit_log partition upkeep failed: %s", error)
            await asyncio.sleep(self._interval)

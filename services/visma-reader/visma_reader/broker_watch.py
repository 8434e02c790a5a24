"""visma-reader's broker watch: finds a broker that lost what it held, while everything runs,
and recovers from the database (recovery.py), once per loss however many readers run.

How a broker that lost its memory is told from the one there was: by the epoch marks it
carries (mlconnector/broker_epoch.py). After each recovery, and on the first start of a
database, the reader marks the broker with a new epoch and records the same number in
PostgreSQL (`visma_broker_epoch`). Every `broker_check_seconds` the watch reads the marks: all
equal to the database's latest epoch, the broker is the one that was marked; any mark missing
or different, the broker lost those topics since, and the recovery runs. The marks are
committed only here, never by a consumer, so no offset of an old broker can pass for a mark
in a new one.

Several readers: the recovery runs under a PostgreSQL advisory lock, and a reader that gets
the lock after another one recovered reads the marks again, finds the new epoch, and does
nothing. A database without an epoch (a first start, or a database older than the watch)
recovers once; on a fresh database that finds nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import asyncpg
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from mlconnector.audit.replay import ReplayPublisher
from mlconnector.broker_epoch import BrokerMemory, EpochMarks, broker_memory
from visma_reader import SERVICE_NAME
from visma_reader.poll_gate import PollGate
from visma_reader.recovery import RecoveryReport, recover_from_database

log = logging.getLogger(__name__)

# One recovery at a time across readers (pg_advisory_lock on hashtext of it).
RECOVERY_LOCK = f"{SERVICE_NAME}.broker-recovery"
# A check that hangs (a broker that accepts connections and answers nothing) gives up.
CHECK_TIMEOUT_SECONDS = 30.0


class EpochRecord(BaseModel):
    """One row of visma_broker_epoch: a mark, and the recovery that preceded it."""

    epoch: int
    marked_at: datetime
    lost_topics: tuple[str, ...]
    republished: int
    reread: int
    instance: str


async def latest_epoch(conn: asyncpg.Connection | asyncpg.Pool) -> EpochRecord | None:
    row = await conn.fetchrow(
        "SELECT epoch, marked_at, lost_topics, republished, reread, instance"
        " FROM visma_broker_epoch ORDER BY id DESC LIMIT 1"
    )
    return EpochRecord.model_validate(dict(row)) if row is not None else None


async def _record(
    conn: asyncpg.Connection,
    epoch: int,
    memory: BrokerMemory,
    report: RecoveryReport,
    instance: str,
) -> None:
    await conn.execute(
        "INSERT INTO visma_broker_epoch (epoch, lost_topics, republished, reread, instance)"
        " VALUES ($1, $2, $3, $4, $5)",
        epoch,
        list(memory.lost),
        report.republished,
        report.reread,
        instance,
    )


OpenPublisher = Callable[[], AbstractAsyncContextManager[ReplayPublisher]]


class BrokerWatch:
    def __init__(
        self,
        marks: EpochMarks,
        pool: asyncpg.Pool,
        database_url: str,
        gate: PollGate,
        publisher: OpenPublisher,
        *,
        interval: float,
        instance: str,
        # Told when a recovery left records to read again from Visma.
        recovered: Callable[[], Awaitable[None]],
    ) -> None:
        self._marks = marks
        self._pool = pool
        self._database_url = database_url
        self._gate = gate
        self._publisher = publisher
        self._interval = interval
        self._instance = instance
        self._recovered = recovered

    async def run(self) -> None:
        """visma-reader's loop: a check every interval, the first one at once; the polls
        start once the first one ended, whatever its outcome."""
        failing = False
        while True:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                    await self.check()
                if failing:
                    log.info("the broker answers the epoch check again")
                failing = False
            except (KafkaError, OSError, TimeoutError, asyncpg.PostgresError) as error:
                # Said once per outage; /readyz names the broker meanwhile.
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "broker epoch not checked (%s: %s)", type(error).__name__, error)
                failing = True
            except Exception:
                # A bug here must neither stop the polls nor end the watch: said, tried again.
                log.exception("the broker epoch check failed")
                failing = True
            self._gate.open()
            await asyncio.sleep(self._interval)

    async def check(self) -> RecoveryReport | None:
        """Recovers when the broker lost what it held; None when it did not."""
        if broker_memory(await _epoch_of(self._pool), await self._marks.read()).intact:
            return None
        # A session of its own: the advisory lock lasts as long as it.
        conn = await asyncpg.connect(self._database_url)
        try:
            # Blocks while another reader recovers; that one's marks are then read here.
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", RECOVERY_LOCK)
            memory = broker_memory(await _epoch_of(conn), await self._marks.read())
            if memory.intact:
                return None
            report = await self._recover(conn, memory)
        finally:
            await conn.close()  # the lock goes with the session
        if report.reread:
            await self._recovered()
        return report

    async def _recover(self, conn: asyncpg.Connection, memory: BrokerMemory) -> RecoveryReport:
        if memory.epoch is not None:
            log.warning("%s: it lost what it held; recovering from the database", memory.describe())
        async with self._gate.closed(), self._publisher() as publisher:
            report = await recover_from_database(conn, publisher)
        epoch = secrets.randbelow(2**62) + 1
        await _record(conn, epoch, memory, report, self._instance)
        await self._marks.write(epoch)
        quiet = memory.epoch is None and not (report.republished or report.reread)
        level = logging.INFO if quiet else logging.WARNING
        log.log(level, "broker marked with epoch %d after recovery: %s", epoch, report.describe())
        return report


async def _epoch_of(conn: asyncpg.Connection | asyncpg.Pool) -> int | None:
    found = await latest_epoch(conn)
    return found.epoch if found is not None else None

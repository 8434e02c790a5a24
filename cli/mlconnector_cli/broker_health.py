"""What `mlconnector run` tells about its broker while it watches the sync: whether it
answers, and whether visma-reader has recovered what a lost one held.

A broker that does not answer stops everything, and the progress line says so at once
instead of freezing. After it answers again (or after the stack replaced a dead embedded
broker with an empty one), visma-reader finds the loss by the broker's epoch marks and
recovers from the database (visma_reader/broker_watch.py); until the marks match the
database's latest epoch again, the sync is recovering. The time spent unreachable or
recovering is time nothing could be delivered: `--sync-once` does not count it against its
time limit, so it never ends on a "missing" count that the recovery is about to settle.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import asyncpg
from aiokafka.errors import KafkaError

from mlconnector.broker_epoch import EpochMarks, broker_memory
from mlconnector.settings import KafkaSettings
from visma_reader.broker_watch import EpochRecord, latest_epoch
from visma_reader.lifecycle import ReaderTopics
from visma_reader.settings import ReaderSettings

PROBE_TIMEOUT_SECONDS = 1.0


async def broker_answers(bootstrap_servers: str) -> bool:
    """Whether any bootstrap server accepts a TCP connection within a second."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


def reader_topics() -> ReaderTopics:
    """The topics visma-reader watches as `mlconnector run` starts it: its defaults."""
    settings = ReaderSettings()
    return ReaderTopics(
        changes=settings.changes_topic,
        notifications=settings.notifications_topic,
        results=settings.results_topic,
    )


class BrokerHealth:
    def __init__(self, kafka: KafkaSettings, since: datetime) -> None:
        """`since`: when the run started; recoveries before it were another run's."""
        self.address = kafka.bootstrap_servers
        self._since = since
        self._marks = EpochMarks(kafka, reader_topics().watched())
        self.down_since: float | None = None
        # Since a loss (unreachable, or replaced) until visma-reader marked the broker again.
        self.recovering_since: float | None = None
        self.stalled_seconds = 0.0
        self._last_tick: float | None = None
        self._last_epoch: int | None = None

    def lost(self) -> None:
        """The stack replaced a dead embedded broker with an empty one."""
        self.recovering_since = self.recovering_since or time.monotonic()

    @property
    def stalled_since(self) -> float | None:
        starts = [t for t in (self.down_since, self.recovering_since) if t is not None]
        return min(starts) if starts else None

    async def tick(self, conn: asyncpg.Connection) -> list[str]:
        """Looks at the broker once; returns what changed, as lines to print."""
        now = time.monotonic()
        if self._last_tick is not None and self.stalled_since is not None:
            self.stalled_seconds += now - self._last_tick
        self._last_tick = now
        news: list[str] = []
        if not await broker_answers(self.address):
            if self.down_since is None:
                self.down_since = now
                self.lost()
                news.append(
                    f"the broker at {self.address} does not answer: nothing moves until it is "
                    "back, then visma-reader recovers what it lost from the database"
                )
            return news
        if self.down_since is not None:
            down = now - self.down_since
            news.append(f"the broker at {self.address} answers again after {down:.0f} s")
            self.down_since = None
        epoch = await _latest(conn)
        after_loss = self.recovering_since is not None
        if after_loss and await self._marked(epoch):
            self.recovering_since = None
        if epoch is not None and epoch.epoch != self._last_epoch and epoch.marked_at >= self._since:
            # A first start's mark with nothing to recover is no news.
            if after_loss or epoch.republished or epoch.reread or self._last_epoch is not None:
                news.append(describe_recovery(epoch))
            self._last_epoch = epoch.epoch
        return news

    async def _marked(self, epoch: EpochRecord | None) -> bool:
        if epoch is None:
            return False
        try:
            return broker_memory(epoch.epoch, await self._marks.read()).intact
        except (KafkaError, OSError, TimeoutError):
            return False

    def notice(self) -> str | None:
        """What the progress line starts with while nothing can move."""
        if self.down_since is not None:
            return f"broker {self.address} unreachable"
        if self.recovering_since is not None:
            return "recovering a lost broker"
        return None


def describe_recovery(epoch: EpochRecord) -> str:
    return (
        f"visma-reader recovered from the database at {epoch.marked_at:%H:%M:%S}: "
        f"{epoch.republished} pending changes re-published from the audit log, "
        f"{epoch.reread} records to read again from Visma"
    )


async def _latest(conn: asyncpg.Connection) -> EpochRecord | None:
    try:
        return await latest_epoch(conn)
    except asyncpg.UndefinedTableError:
        return None  # visma-reader has not applied its migrations yet

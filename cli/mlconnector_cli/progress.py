"""The progress of a sync, read from the audit log in PostgreSQL: what each record's state is.

Read from the database rather than the topics, so that a resumed stack (whose embedded broker
starts empty) still counts what was delivered before the restart. The totals are what the
source holds (for `mlconnector run`, the Visma sandbox's record counts); the rate and the ETA
come from how the settled count moved over the last half minute.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

import asyncpg
from pydantic import BaseModel

from mlconnector.audit.status import RecordState, StateSummary, state_summaries
from mlconnector.contracts import REFERENCE_ENTITIES, Entity
from mlconnector.sync_status import EntityProgress, eta_text

RATE_WINDOW_SECONDS = 30.0
LINE_WIDTH = 80
SHORT_NAMES = {
    Entity.CREDIT_TERM: "terms",
    Entity.VAT_CATEGORY: "vat",
    Entity.ACCOUNT: "acct",
    Entity.DIMENSION_VALUE: "dim",
    Entity.SUPPLIER: "sup",
    Entity.PURCHASE_ORDER: "po",
    Entity.SUPPLIER_INVOICE: "inv",
}


class ProgressSnapshot(BaseModel):
    entities: dict[Entity, EntityProgress]

    @property
    def total(self) -> int:
        return sum(p.total for p in self.entities.values())

    @property
    def settled(self) -> int:
        return sum(p.settled for p in self.entities.values())

    def count(self, state: RecordState) -> int:
        return sum(getattr(p, state.value) for p in self.entities.values())

    def all_delivered(self) -> bool:
        return all(p.delivered >= p.total for p in self.entities.values())


def snapshot_of(
    summaries: list[StateSummary], totals: Mapping[Entity, int], tenant: str | None = None
) -> ProgressSnapshot:
    entities = {e: EntityProgress(total=totals.get(e, 0)) for e in Entity}
    for summary in summaries:
        if tenant is not None and summary.tenant != tenant:
            continue
        try:
            progress = entities[Entity(summary.entity)]
        except ValueError:
            continue
        setattr(
            progress, summary.state.value, getattr(progress, summary.state.value) + summary.records
        )
    for progress in entities.values():
        # A source that grew since its totals were read: never show more than 100 %.
        progress.total = max(progress.total, progress.settled + progress.pending + progress.parked)
    return ProgressSnapshot(entities=entities)


class RateMeter:
    """Settled records per second over the last RATE_WINDOW_SECONDS."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, settled: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, settled))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()

    def per_second(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def render_line(snapshot: ProgressSnapshot, rate: float | None, notice: str | None = None) -> str:
    """One line of at most LINE_WIDTH characters: why nothing moves (`notice`, e.g. a broker
    that does not answer), percent and totals, rate and ETA, what needs a look, then the
    totals per entity."""
    total, settled = snapshot.total, snapshot.settled
    percent = 100.0 * settled / total if total else 0.0
    if total and settled >= total:
        head = f"caught up: {snapshot.count(RecordState.DELIVERED)}/{total} delivered"
    else:
        head = f"{percent:3.0f}% {settled}/{total}"
    parts = [notice, head] if notice else [head]
    if settled < total:
        parts.append(f"{rate:.0f}/s ETA {eta_text(total - settled, rate)}" if rate else "ETA ?")
    parts += [
        f"{snapshot.count(state)} {state.value}"
        for state in (RecordState.REJECTED, RecordState.FAILED, RecordState.PARKED)
        if snapshot.count(state)
    ]
    # Last, because it is what a narrow terminal can best do without.
    parts.append(
        " ".join(
            f"{SHORT_NAMES[e]} {p.settled}/{p.total}"
            for e, p in snapshot.entities.items()
            # Reference data is shown once there is some: most lines are about documents.
            if p.total or e not in REFERENCE_ENTITIES
        )
    )
    line = " · ".join(parts)
    return line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…"


class ProgressReader:
    """Reads snapshots (and what else the run watches) over one connection, opened on first
    use, again after it broke."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._conn: asyncpg.Connection | None = None

    async def connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._database_url, timeout=5)
        return self._conn

    async def snapshot(
        self, totals: Mapping[Entity, int], tenant: str | None = None
    ) -> ProgressSnapshot:
        return snapshot_of(await state_summaries(await self.connection()), totals, tenant)

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()

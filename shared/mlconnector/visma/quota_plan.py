"""The quota plan of each Visma company, shared by every process that calls Visma for it
(visma-reader, basware-writer, every instance), kept in PostgreSQL like the Basware budget
(its statements and their rules: quota_plan.sql; its table: migrations/001_quota_plan.sql).

Visma counts calls per company and client in a fixed window (docs/visma-net.md §8.1). The
plan counts each call before it goes, in one of two lanes (ratelimit.QuotaLane): live work
may use the whole window, bulk work stops `reserve` calls short of it, so an incremental
poll and the upload of what it found always find calls left while a backfill has spent its
share. A take is one statement; nobody holds a lock while a window passes: live work sleeps
until the reset, bulk work is put aside (the writer parks its uploads) and taken up again.

Beside it, pure: what a plan says to a person (spent, resumes at) and when a backfill whose
remaining work needs so many calls ends, given the windows it waits for (the rules:
docs/visma-net.md §8.3).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.audit.stored import Connection
from mlconnector.basware.rate_budget import named_statements
from mlconnector.migrations import apply_migrations
from mlconnector.visma.ratelimit import QuotaLane, QuotaSpent, RateLimitStatus

log = logging.getLogger(__name__)

STATEMENTS = named_statements(
    resources.files("mlconnector.visma").joinpath("quota_plan.sql").read_text()
)
MIGRATIONS_PACKAGE = "mlconnector.visma"
MIGRATIONS_OWNER = "visma-quota"
# The reset header is rounded up to a second: answers of one window may differ by that.
RESET_SLACK_SECONDS = 2.0
# A live call that found the window spent tries again this long after the reset.
AFTER_RESET_SECONDS = 0.5

REFUSED = Counter(
    "mlc_visma_quota_refused",
    "Visma calls the quota plan put off until the window resets, by lane",
    ["company", "lane"],
)
REMAINING = Gauge(
    "mlc_visma_quota_remaining",
    "Calls left in Visma's window, as its last answer said",
    ["company"],
)


class QuotaSettings(BaseSettings):
    """VISMA_QUOTA_*: the plan's shares, the same for every process that shares it."""

    model_config = SettingsConfigDict(env_prefix="VISMA_QUOTA_", extra="ignore")

    # The share of each window kept for live work: bulk work stops this far short of the
    # limit (docs/visma-net.md §8.3).
    reserve: float = Field(default=0.1, ge=0, lt=1)
    # How long Visma's window lasts; the headers say only when the current one ends.
    window_seconds: float = Field(default=3600.0, gt=0)


async def migrate_quota_plan(pool: asyncpg.Pool) -> list[str]:
    """The plan's table, made by whichever service that shares it starts first."""
    async with pool.acquire() as conn:
        return await apply_migrations(conn, MIGRATIONS_PACKAGE, owner=MIGRATIONS_OWNER)


class QuotaPlan:
    """The plans of every company this process calls Visma for."""

    def __init__(self, pool: asyncpg.Pool, settings: QuotaSettings | None = None) -> None:
        self._pool = pool
        self.settings = settings or QuotaSettings()

    def gate(self, company_id: str, client_id: str) -> CompanyQuota:
        return CompanyQuota(self, company_id, client_id)

    async def take(
        self, company_id: str, client_id: str, lane: QuotaLane, calls: int = 1
    ) -> tuple[bool, datetime | None]:
        """Whether `calls` of `lane` may go now, and when the window ends."""
        s = self.settings
        row = await self._pool.fetchrow(
            STATEMENTS["take"],
            company_id,
            client_id,
            s.reserve,
            s.window_seconds,
            lane.value,
            calls,
        )
        assert row is not None
        return bool(row["granted"]), row["resets_at"]

    async def observe(self, company_id: str, client_id: str, status: RateLimitStatus) -> None:
        REMAINING.labels(company_id).set(status.remaining)
        await self._pool.execute(
            STATEMENTS["observe"],
            company_id,
            client_id,
            status.limit,
            status.remaining,
            status.reset_seconds,
            RESET_SLACK_SECONDS,
        )


class CompanyQuota:
    """The gate of one Visma client (ratelimit.QuotaGate): its company's shared plan."""

    def __init__(self, plan: QuotaPlan, company_id: str, client_id: str) -> None:
        self._plan = plan
        self.company_id = company_id
        self.client_id = client_id
        # The window whose spent lanes were said already, so each is logged once.
        self._told: set[tuple[QuotaLane, datetime]] = set()

    def _resumes_at(self, resets_at: datetime | None) -> datetime:
        if resets_at is not None:
            return resets_at
        return datetime.now(UTC) + timedelta(seconds=self._plan.settings.window_seconds)

    def _tell(self, lane: QuotaLane, resumes_at: datetime) -> None:
        REFUSED.labels(self.company_id, lane.value).inc()
        if (lane, resumes_at) in self._told:
            return
        self._told = {(lane, resumes_at)}
        log.warning(
            "Visma's quota of company %s is spent for %s work; it resumes at %s UTC",
            self.company_id,
            lane.value,
            f"{resumes_at:%H:%M:%S}",
        )

    async def admit(self, lane: QuotaLane, *, wait: bool) -> None:
        while True:
            granted, resets_at = await self._plan.take(self.company_id, self.client_id, lane)
            if granted:
                return
            resumes_at = self._resumes_at(resets_at)
            self._tell(lane, resumes_at)
            if not wait:
                raise QuotaSpent(self.company_id, lane, resumes_at)
            seconds = (resumes_at - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(0.0, seconds) + AFTER_RESET_SECONDS)

    async def observe(self, status: RateLimitStatus) -> None:
        await self._plan.observe(self.company_id, self.client_id, status)


# --- what a plan says to a person (pure) ---


class QuotaStanding(BaseModel):
    """One company's plan as read (`plans` in quota_plan.sql)."""

    model_config = ConfigDict(frozen=True)

    company_id: str
    client_id: str
    quota_limit: int | None
    reserve_fraction: float
    window_seconds: float
    used: int
    resets_at: datetime | None
    live_refused: int
    bulk_refused: int
    bulk_spent_at: datetime | None
    now: datetime

    @property
    def window_over(self) -> bool:
        return self.resets_at is None or self.resets_at <= self.now

    @property
    def reserve(self) -> int:
        return (
            0 if self.quota_limit is None else math.ceil(self.quota_limit * self.reserve_fraction)
        )

    @property
    def bulk_share(self) -> int | None:
        """Calls a window has for bulk work; None while the limit is not known."""
        return None if self.quota_limit is None else self.quota_limit - self.reserve

    @property
    def used_now(self) -> int:
        return 0 if self.window_over else self.used

    @property
    def bulk_spent(self) -> bool:
        share = self.bulk_share
        return share is not None and not self.window_over and self.used >= share

    @property
    def resumes_at(self) -> datetime | None:
        """When bulk work goes on, if it waits now."""
        return self.resets_at if self.bulk_spent else None


def quota_standing(row: asyncpg.Record | dict[str, Any]) -> QuotaStanding:
    return QuotaStanding.model_validate(dict(row))


async def read_quota_plans(conn: Connection) -> list[QuotaStanding]:
    """Every plan; none when the plan's table does not exist yet (no reader ran)."""
    if not await conn.fetchval("SELECT to_regclass('visma_quota_plan') IS NOT NULL"):
        return []
    return [quota_standing(r) for r in await conn.fetch(STATEMENTS["plans"])]


def backfill_eta(standing: QuotaStanding, calls_left: int) -> datetime | None:
    """When bulk work needing `calls_left` more calls can be done, as far as the quota
    decides: now, if this window has them left; else the reset that opens the last window
    it needs (each window gives its bulk share; the calls then go at the pipeline's pace).
    None while the limit is not known (no answer yet)."""
    share = standing.bulk_share
    if share is None:
        return None
    left_now = max(0, share - standing.used_now)
    if calls_left <= left_now:
        return standing.now
    if share <= 0:
        return None
    window = timedelta(seconds=standing.window_seconds)
    first_reset = standing.now + window if standing.window_over else standing.resets_at
    assert first_reset is not None
    later_windows = math.ceil((calls_left - left_now) / share)
    return first_reset + window * (later_windows - 1)

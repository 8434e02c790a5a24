"""Visma's hourly quota as every call sees it: the X-RateLimit-* headers of each answer, the
two lanes calls take it in, and the gate a client asks before each call
(docs/visma-net.md §8.1 and docs/visma-net.md §8.3).

The gate of a service is the company's quota plan in PostgreSQL (quota_plan.py), shared by
every process that calls Visma for the company. A client without one (the command's ping,
a preview) only remembers what the headers said.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel


class RateLimitStatus(BaseModel):
    limit: int
    remaining: int
    reset_seconds: float


def read_rate_limit(headers: Mapping[str, str]) -> RateLimitStatus | None:
    try:
        return RateLimitStatus(
            limit=int(headers["x-ratelimit-limit"]),
            remaining=int(headers["x-ratelimit-remaining"]),
            reset_seconds=float(headers["x-ratelimit-reset"]),
        )
    except (KeyError, ValueError):
        return None


class QuotaLane(StrEnum):
    """Which share of the quota a call is taken from. Live work (incremental polls, what a
    notification asks for, and the uploads of changes they found) may use the whole quota;
    bulk work (a backfill's or a full scan's attachment downloads) stops at the reserve, so
    live work always finds calls left."""

    LIVE = "live"
    BULK = "bulk"


class QuotaSpent(Exception):
    """The lane has no call left in this window: the work waits until `resumes_at`."""

    def __init__(self, company_id: str, lane: QuotaLane, resumes_at: datetime) -> None:
        super().__init__(
            f"Visma's quota of company {company_id} is spent for {lane} work until "
            f"{resumes_at:%H:%M:%S} UTC"
        )
        self.company_id = company_id
        self.lane = lane
        self.resumes_at = resumes_at


class QuotaGate(Protocol):
    """Asked before every call of one client, told every answer's headers."""

    async def admit(self, lane: QuotaLane, *, wait: bool) -> None:
        """Counts the coming call against the lane. When the lane is spent: with `wait`, it
        sleeps (holding nothing others wait on) until the window resets; without, it raises
        QuotaSpent so the caller can put the work aside."""
        ...

    async def observe(self, status: RateLimitStatus) -> None: ...


class UnplannedQuota:
    """No plan: every call goes, and the headers are only remembered (the ping shows them)."""

    async def admit(self, lane: QuotaLane, *, wait: bool) -> None:
        return None

    async def observe(self, status: RateLimitStatus) -> None:
        return None

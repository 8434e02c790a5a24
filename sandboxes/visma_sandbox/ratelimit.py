"""The API Management quota: a fixed hourly window per (tenant, client), policy 4-fixed-window;
and, on demand, the historic rules against repeating one request."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

POLICY = "4-fixed-window"


@dataclass(slots=True)
class Window:
    started: float
    used: int = 0


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset_seconds: int
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
            "X-RateLimit-Policy": POLICY,
        }


class RateLimiter:
    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], Window] = {}

    def hit(self, key: tuple[str, str], *, limit: int, window: float, now: float) -> Quota:
        """Counts one call against `key`'s window and says whether it may go through."""
        current = self._windows.get(key)
        if current is None or now >= current.started + window:
            current = self._windows[key] = Window(started=now)
        current.used += 1
        # Reset is rounded up: a client that waits exactly that long is never early.
        reset = max(1, math.ceil(current.started + window - now))
        allowed = current.used <= limit
        return Quota(limit, max(0, limit - current.used), reset, allowed)

    def clear(self) -> None:
        self._windows.clear()


RequestIdentity = tuple[str, str, str, str]  # tenant, method, lower-cased path, query


class RepeatGuard:
    """The historic VNI rules against naive retry loops (docs/visma-net.md §8.2), off by default.

    "Same request": at most N identical requests per window, whichever client sends them.
    "Same failing request": once an identical request has failed N times in the window,
    further ones are refused until the oldest failure leaves it. Both answer 429 with
    Retry-After: the seconds until a slot frees up.
    """

    def __init__(self) -> None:
        self._seen: dict[RequestIdentity, deque[float]] = {}
        self._failed: dict[RequestIdentity, deque[float]] = {}

    @staticmethod
    def _wait(times: deque[float] | None, limit: int, window: float, now: float) -> int | None:
        if times is None:
            return None
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) < limit:
            return None
        return max(1, math.ceil(times[0] + window - now))

    def check(
        self,
        identity: RequestIdentity,
        now: float,
        *,
        same: tuple[int, float] | None,
        failing: tuple[int, float] | None,
    ) -> int | None:
        """Counts the request; the Retry-After seconds if a rule refuses it, else None."""
        if failing is not None:
            wait = self._wait(self._failed.get(identity), failing[0], failing[1], now)
            if wait is not None:
                return wait
        if same is not None:
            seen = self._seen.setdefault(identity, deque())
            wait = self._wait(seen, same[0], same[1], now)
            if wait is not None:
                return wait  # a refused request takes no slot, so Retry-After holds
            seen.append(now)
        return None

    def failed(self, identity: RequestIdentity, now: float) -> None:
        self._failed.setdefault(identity, deque()).append(now)

    def clear(self) -> None:
        self._seen.clear()
        self._failed.clear()

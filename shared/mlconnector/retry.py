"""Retry policy: exponential backoff with full jitter, with the server's Retry-After honoured."""

from __future__ import annotations

import email.utils
import random
import time

from pydantic import BaseModel, Field


class Backoff(BaseModel):
    """How long to wait before attempt `attempt + 1` (attempts count from 1)."""

    base_seconds: float = Field(default=0.2, gt=0)
    cap_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        jittered = random.uniform(0, ceiling)
        # Retry-After is a floor, never shortened by jitter: a request sent earlier is wasted.
        return max(jittered, retry_after) if retry_after is not None else jittered

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Reads Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)

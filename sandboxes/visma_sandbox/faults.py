"""Fault injection per route and company: error statuses, 429 storms and slow answers."""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class FaultRule(BaseModel):
    """Hits requests whose lower-cased path matches `path` (a glob, e.g. "/v1/supplier*")."""

    model_config = ConfigDict(extra="forbid")

    path: str = "*"
    method: str | None = None
    # Hits only the calls of this company (the one its token stands for); None: every one.
    company_id: str | None = None
    # 500, 503 or 429 (a 429 carries Retry-After: retry_after); None: only the delay applies.
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: int = Field(default=1, ge=0)
    delay_ms: float = Field(default=0, ge=0)
    probability: float = Field(default=1.0, ge=0, le=1)
    # How many requests it hits before it removes itself; None: until cleared.
    times: int | None = Field(default=None, ge=1)


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    delay_ms: float = 0
    status: int | None = None
    retry_after: int = 0


class FaultInjector:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._rules: dict[int, FaultRule] = {}
        self._hits: dict[int, int] = {}
        self._next_id = 1

    def add(self, rule: FaultRule) -> int:
        rule_id = self._next_id
        self._next_id += 1
        self._rules[rule_id] = rule
        self._hits[rule_id] = 0
        return rule_id

    def remove(self, rule_id: int) -> None:
        self._rules.pop(rule_id, None)

    def clear(self) -> None:
        self._rules.clear()

    def rules(self) -> dict[int, FaultRule]:
        return dict(self._rules)

    def apply(self, method: str, path: str, company_id: str | None = None) -> FaultOutcome:
        if not self._rules:
            return FaultOutcome()
        path = path.lower()
        delay, status, retry_after = 0.0, None, 0
        for rule_id, rule in list(self._rules.items()):
            if rule.method is not None and rule.method.upper() != method:
                continue
            if rule.company_id is not None and rule.company_id != company_id:
                continue
            if not fnmatch.fnmatchcase(path, rule.path.lower()):
                continue
            if self._rng.random() >= rule.probability:
                continue
            self._hits[rule_id] += 1
            if rule.times is not None and self._hits[rule_id] >= rule.times:
                del self._rules[rule_id]
            delay += rule.delay_ms
            if status is None and rule.status is not None:
                status, retry_after = rule.status, rule.retry_after
        return FaultOutcome(delay, status, retry_after)

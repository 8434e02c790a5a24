"""Faults injected at run time, per host (region and environment) and per route."""

from __future__ import annotations

import random
import uuid
from enum import StrEnum

from pydantic import BaseModel, Field

from basware_sandbox.config import Environment, Region, VirtualHost


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429, with Retry-After when retry_after is set
    SERVER_ERROR = "server_error"  # 500 with a ResponseEntityList UNEXPECTED_ERROR
    UNAVAILABLE = "unavailable"  # 503, with Retry-After when retry_after is set
    CONFLICT = "conflict"  # 409 with a ResponseEntityList CONFLICT_IN_POST
    SLOW = "slow"  # answers normally after delay_ms
    DROP = "drop"  # the connection closes before a complete answer
    EXPIRED_TOKEN = "expired_token"  # 401 to a bearer token, as if it had expired


class FaultRule(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: FaultKind
    region: Region | None = None
    environment: Environment | None = None
    method: str | None = None
    path_prefix: str | None = None
    retry_after: str | None = None
    delay_ms: int = Field(default=0, ge=0)
    probability: float = Field(default=1.0, ge=0, le=1)
    # Applies to the next N matching requests; None keeps it until removed.
    remaining: int | None = Field(default=None, ge=1)

    def matches(self, host: VirtualHost, method: str, path: str, *, bearer: bool) -> bool:
        return (
            (self.region is None or self.region == host.region)
            and (self.environment is None or self.environment == host.environment)
            and (self.method is None or self.method.upper() == method)
            and (self.path_prefix is None or path.startswith(self.path_prefix))
            and (self.kind is not FaultKind.EXPIRED_TOKEN or bearer)
        )


class FaultPlan(BaseModel):
    """What the middleware does to one request: wait, then maybe answer with a fault."""

    delay_ms: int = 0
    fault: FaultRule | None = None


class FaultBook:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.rules: list[FaultRule] = []
        self._rng = rng or random.Random()

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str | None = None) -> None:
        self.rules = [] if rule_id is None else [r for r in self.rules if r.id != rule_id]

    def plan(self, host: VirtualHost, method: str, path: str, *, bearer: bool) -> FaultPlan:
        plan = FaultPlan()
        for rule in list(self.rules):
            if not rule.matches(host, method, path, bearer=bearer):
                continue
            if plan.fault is not None and rule.kind is not FaultKind.SLOW:
                continue
            if self._rng.random() >= rule.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
            if rule.kind is FaultKind.SLOW:
                plan.delay_ms += rule.delay_ms
            else:
                plan.fault = rule
        return plan

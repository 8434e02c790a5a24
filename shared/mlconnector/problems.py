"""What is wrong with a connection, in an operator's words: one name per cause, so that ping
and `connections add` tell a wrong secret from a wrong company, a wrong region, a skewed
clock or an unreachable host."""

from __future__ import annotations

from enum import StrEnum


class Problem(StrEnum):
    WRONG_SECRET = "wrong client id or secret"  # noqa: S105 (a diagnosis, not a password)
    WRONG_COMPANY = "wrong company or tenant id"
    WRONG_REGION = "wrong region"
    CLOCK_SKEW = "clock skew"
    UNREACHABLE = "unreachable host"
    REFUSED = "refused"

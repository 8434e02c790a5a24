"""Who may do what, and the checks on each request: pure functions, no I/O.

Roles are ordered: a viewer reads; an operator also replays, changes schedules, pings and
verifies; an admin also manages connections, their credentials and the users.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def allows(role: Role, needed: Role) -> bool:
    return _RANK[role] >= _RANK[needed]


def locked_out(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def lockout_after(failures: int, now: datetime, *, allowed: int, minutes: float) -> datetime | None:
    """When the user's lockout ends after `failures` wrong passwords in a row; None while
    they may still try."""
    return now + timedelta(minutes=minutes) if failures >= allowed else None


def tokens_match(expected: str, given: str | None) -> bool:
    """CSRF token comparison in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def cross_site(origin: str | None, fetch_site: str | None, host: str | None) -> bool:
    """Whether a browser says the request comes from another site: its Origin names
    another host, or Sec-Fetch-Site says cross-site. Clients that send neither (scripts)
    are judged by their CSRF token alone."""
    if fetch_site == "cross-site":
        return True
    if origin is None:
        return False
    if origin == "null":
        return True
    return urlsplit(origin).netloc != host

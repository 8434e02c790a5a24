"""Every call the sandbox answered, for tests that prove call counts and waiting times.

Nothing secret is kept: no Authorization header, no form body (where the client secret is),
only the path, the query string, harmless headers and what the sandbox decided.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_KEPT_HEADERS = frozenset({"ipp-company-id", "ipp-application-type", "if-match", "user-agent"})


class LoggedRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    at: float  # time.time() when the request arrived
    method: str
    path: str
    query: str
    route: str  # e.g. "supplier.list", "supplierinvoice.put", "token"
    status: int
    company_id: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    # The id of the token the call carried (its jti, not the token): the calls of one client
    # process for one company share it until it fetches a new one.
    token_id: str | None = None
    rate_limit_remaining: int | None = None
    retry_after: int | None = None
    headers: dict[str, str] = {}


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.lower() in _KEPT_HEADERS and name.lower() not in _SECRET_HEADERS
    }


class RequestLog:
    def __init__(self, capacity: int = 200_000) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=capacity)
        self._counts: Counter[tuple[str | None, str]] = Counter()
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, entry: LoggedRequest) -> None:
        self._entries.append(entry)
        self._counts[(entry.company_id, entry.route)] += 1

    def entries(
        self, *, since: int = 0, company_id: str | None = None, route: str | None = None
    ) -> list[LoggedRequest]:
        return [
            e
            for e in self._entries
            if e.seq > since
            and (company_id is None or e.company_id == company_id)
            and (route is None or e.route == route)
        ]

    def count(self, route: str | None = None, *, company_id: str | None = None) -> int:
        """Calls to `route` ("supplier.list", "token", ...; None: all) for one company or all."""
        return sum(
            n
            for (company, name), n in self._counts.items()
            if (route is None or name == route) and (company_id is None or company == company_id)
        )

    def counters(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (company, name), n in self._counts.items():
            totals[f"{company or '-'} {name}"] += n
        return dict(totals)

    @property
    def last_seq(self) -> int:
        return self._seq

    def route_counts(self) -> dict[tuple[str | None, str], int]:
        """Calls per (company id, route) since the log was cleared, evicted entries included."""
        return dict(self._counts)

    def restore(
        self,
        entries: Iterable[LoggedRequest],
        route_counts: Mapping[tuple[str | None, str], int],
        last_seq: int,
    ) -> None:
        """Puts a saved log back: new requests carry on from `last_seq`."""
        self._entries.clear()
        self._entries.extend(entries)
        self._counts = Counter(route_counts)
        self._seq = last_seq

    def clear(self) -> None:
        self._entries.clear()
        self._counts.clear()


def quota_windows(entries: Iterable[LoggedRequest]) -> list[list[LoggedRequest]]:
    """Logged calls split by quota window, oldest first: a window starts where the calls
    left go up (a test or benchmark counts what each window was used for)."""
    windows: list[list[LoggedRequest]] = []
    last: int | None = None
    for entry in entries:
        remaining = entry.rate_limit_remaining
        if remaining is None:
            continue
        if last is None or remaining > last:
            windows.append([])
        windows[-1].append(entry)
        last = remaining
    return windows

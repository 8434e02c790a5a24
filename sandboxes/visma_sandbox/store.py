"""In-memory records of one entity in one company, indexed for the queries the API answers.

Two sorted indexes are kept beside the records: by key (the list order) and by
(lastModifiedDateTime, key). An incremental query `lastModifiedDateTime>=X` bisects the second
and touches only the k matching rows: O(log n + k log k), whatever n is. The last query's
result is kept until the table changes, so paging through a large result costs a slice per
page.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from visma_sandbox.entities import EntitySpec, RecordKey
from visma_sandbox.schemas import Dto

CONDITIONS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(slots=True, eq=False)
class StoredRecord:
    key: RecordKey
    record: Dto
    last_modified: datetime
    created: datetime
    row_version: int
    # Content per set of omitted fields: lists re-use it instead of re-serialising.
    content_json: dict[frozenset[str], bytes] = field(default_factory=dict)
    # The whole rendered record per (omitted fields, timestamp style, skew): a record's
    # server fields never change (a write makes a new StoredRecord), so this stays valid.
    rendered: dict[tuple[frozenset[str], str, float], bytes] = field(default_factory=dict)

    def content(self, omit: frozenset[str]) -> bytes:
        cached = self.content_json.get(omit)
        if cached is None:
            text = self.record.model_dump_json(by_alias=True, exclude_none=True, exclude=set(omit))
            cached = self.content_json[omit] = text.encode()
        return cached


@dataclass(frozen=True)
class DateCondition:
    parameter: str  # lower-cased query name, e.g. "lastmodifieddatetime"
    condition: str  # one of CONDITIONS
    value: datetime


@dataclass(frozen=True)
class NumberCondition:
    parameter: str
    condition: str
    value: float


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request, hashable so its result can be cached."""

    equals: tuple[tuple[str, str], ...] = ()
    dates: tuple[DateCondition, ...] = ()
    numbers: tuple[NumberCondition, ...] = ()
    flags: tuple[tuple[str, bool], ...] = ()
    greater_than: str | None = None


class EntityTable:
    def __init__(self, spec: EntitySpec) -> None:
        self.spec = spec
        self._records: dict[RecordKey, StoredRecord] = {}
        self._by_key: list[RecordKey] = []
        self._by_modified: list[tuple[datetime, RecordKey]] = []
        self.version = 0
        self._cached: tuple[int, ListQuery, list[StoredRecord]] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[StoredRecord]:
        return (self._records[key] for key in self._by_key)

    def get(self, key: RecordKey) -> StoredRecord | None:
        return self._records.get(key)

    def put(self, stored: StoredRecord) -> StoredRecord | None:
        """Inserts or replaces a record; returns the one it replaced."""
        previous = self._records.get(stored.key)
        if previous is None:
            bisect.insort(self._by_key, stored.key)
        else:
            self._unindex_modified(previous)
        self._records[stored.key] = stored
        bisect.insort(self._by_modified, (stored.last_modified, stored.key))
        self.version += 1
        return previous

    def delete(self, key: RecordKey) -> StoredRecord | None:
        previous = self._records.pop(key, None)
        if previous is not None:
            del self._by_key[bisect.bisect_left(self._by_key, key)]
            self._unindex_modified(previous)
            self.version += 1
        return previous

    def load(self, records: Iterable[StoredRecord]) -> None:
        """Adds many records at once, sorting the indexes once (seeding 100,000 rows)."""
        for stored in records:
            self._records[stored.key] = stored
        self._by_key = sorted(self._records)
        self._by_modified = sorted((r.last_modified, r.key) for r in self._records.values())
        self.version += 1

    def clear(self) -> None:
        self._records.clear()
        self._by_key.clear()
        self._by_modified.clear()
        self.version += 1

    def _unindex_modified(self, stored: StoredRecord) -> None:
        entry = (stored.last_modified, stored.key)
        del self._by_modified[bisect.bisect_left(self._by_modified, entry)]

    def select(self, query: ListQuery) -> list[StoredRecord]:
        """The records matching `query`, ordered by key."""
        if self._cached is not None and self._cached[:2] == (self.version, query):
            return self._cached[2]
        modified = [d for d in query.dates if d.parameter == "lastmodifieddatetime"]
        if modified:
            candidates: Iterable[StoredRecord] = sorted(
                (self._records[key] for key in self._modified_keys(modified[0])),
                key=lambda r: r.key,
            )
        else:
            candidates = iter(self)
        matching = [r for r in candidates if self._matches(r, query)]
        self._cached = (self.version, query, matching)
        return matching

    def _modified_keys(self, condition: DateCondition) -> Iterator[RecordKey]:
        index = self._by_modified
        value = condition.value
        op = condition.condition
        left = bisect.bisect_left(index, value, key=lambda e: e[0])
        right = bisect.bisect_right(index, value, key=lambda e: e[0])
        bounds = {">=": (left, len(index)), ">": (right, len(index)), "<": (0, left)}
        start, stop = bounds.get(op, (0, right))
        return (index[i][1] for i in range(start, stop))

    def _matches(self, stored: StoredRecord, query: ListQuery) -> bool:
        spec, record = self.spec, stored.record
        if query.greater_than is not None and stored.key[0] <= query.greater_than:
            return False
        for name, wanted in query.equals:
            actual = spec.equals[name](record)
            if actual is None or actual.casefold() != wanted.casefold():
                return False
        for name, flag in query.flags:
            if spec.flags[name](record) != flag:
                return False
        for number in query.numbers:
            if not CONDITIONS[number.condition](
                spec.numbers[number.parameter](record), number.value
            ):
                return False
        for date in query.dates:
            actual_date = self._date(stored, date.parameter)
            if actual_date is None or not CONDITIONS[date.condition](actual_date, date.value):
                return False
        return True

    def _date(self, stored: StoredRecord, parameter: str) -> datetime | None:
        if parameter == "lastmodifieddatetime":
            return stored.last_modified
        if parameter == "createddatetime":
            return stored.created
        return self.spec.dates[parameter](stored.record)

"""The comparison of one entity: pure, no I/O.

Each side is given as `Side`s: a record's key and the values of the fields the connector
owns, as JSON. Visma's side is what the writer's own mapping makes of each Visma record;
Basware's is what its list routes answer. A key Visma has and Basware lacks is missing, one
only Basware has (from this source system) is extra, one on both sides is equal or different
(each differing field with both values), one Basware holds more often than Visma is a
duplicate (invoices: two documents for one Visma invoice). Two Visma records may share a key
(two invoices with one supplier invoice number): each is paired with one Basware record.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue, field_validator


class Outcome(StrEnum):
    EQUAL = "equal"
    MISSING = "missing"  # in Visma, not in Basware (an invoice: not found)
    EXTRA = "extra"  # in Basware (from this source system), not in Visma
    DIFFERENT = "different"
    DUPLICATE = "duplicate"  # Basware holds more than one record for one Visma record
    UNMAPPABLE = "unmappable"  # the writer's mapping refuses the Visma record


class FieldDifference(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    visma: JsonValue
    basware: JsonValue


class Side(BaseModel):
    """One record as one system holds it: its key and the connector's fields."""

    model_config = ConfigDict(frozen=True)

    key: str
    # The Visma record this is (its id, as in the audit log); None on Basware's side.
    entity_id: str | None = None
    owned: dict[str, JsonValue] = {}
    # Basware's own id and processing status (invoices), for the report.
    basware_id: str | None = None
    status: str | None = None
    # Why the Visma record cannot be mapped (Outcome.UNMAPPABLE).
    unmappable: str | None = None

    @field_validator("owned")
    @classmethod
    def _normalised(cls, owned: dict[str, JsonValue]) -> dict[str, JsonValue]:
        return {field: normalised(value) for field, value in owned.items()}


class RecordOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity: str
    key: str
    outcome: Outcome
    entity_id: str | None = None
    fields: tuple[FieldDifference, ...] = ()
    basware_ids: tuple[str, ...] = ()
    basware_status: str | None = None
    detail: str | None = None


class EntityTotals(BaseModel):
    entity: str
    visma: int = 0
    basware: int = 0
    equal: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    duplicate: int = 0
    unmappable: int = 0
    # Basware's processing status of the records it holds (invoices), counted.
    statuses: dict[str, int] = {}

    @property
    def all_equal(self) -> bool:
        return self.equal == self.visma and not (self.extra or self.duplicate)


class EntityReport(BaseModel):
    totals: EntityTotals
    # Every record that is not equal.
    differences: list[RecordOutcome]


def normalised(value: Any) -> JsonValue:
    """An empty list and a missing value say the same: nothing."""
    if isinstance(value, list):
        return [normalised(v) for v in value] or None
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value  # type: ignore[no-any-return]


def owned_values(dumped: dict[str, Any], fields: Iterable[str]) -> dict[str, JsonValue]:
    return {field: dumped.get(field) for field in fields}


def field_differences(visma: Side, basware: Side) -> tuple[FieldDifference, ...]:
    return tuple(
        FieldDifference(field=field, visma=value, basware=basware.owned.get(field))
        for field, value in visma.owned.items()
        if value != basware.owned.get(field)
    )


def paired(records: Sequence[Side], copies: Sequence[Side]) -> list[tuple[Side, Side | None]]:
    """The Visma records of one key, each with a Basware record of it (at most as many as
    there are records): an equal one where there is one, then the rest in order."""
    if len(records) == 1:
        return [(records[0], copies[0] if copies else None)]
    left = list(copies)
    pairs: dict[int, Side] = {}
    for n, record in enumerate(records):
        equal = next((c for c in left if not field_differences(record, c)), None)
        if equal is not None:
            pairs[n] = equal
            left.remove(equal)
    for n in range(len(records)):
        if n not in pairs and left:
            pairs[n] = left.pop(0)
    return [(record, pairs.get(n)) for n, record in enumerate(records)]


def compare(
    entity: str, visma: Sequence[Side], basware: Sequence[Side], *, extras: bool = True
) -> EntityReport:
    """Every Visma record against Basware's records of the same key. `extras`: whether a
    record only Basware has is reported (not for invoices: they reach Basware by many
    channels besides the connector)."""
    held: defaultdict[str, list[Side]] = defaultdict(list)
    for side in basware:
        held[side.key].append(side)
    totals = EntityTotals(
        entity=entity,
        visma=len(visma),
        basware=len(basware),
        statuses=dict(Counter(s.status for s in basware if s.status)),
    )
    differences: list[RecordOutcome] = []

    def report(outcome: Outcome, side: Side, **found: Any) -> None:
        setattr(totals, outcome.value, getattr(totals, outcome.value) + 1)
        if outcome is not Outcome.EQUAL:
            differences.append(
                RecordOutcome(
                    entity=entity,
                    key=side.key,
                    outcome=outcome,
                    entity_id=side.entity_id,
                    **found,
                )
            )

    mapped: defaultdict[str, list[Side]] = defaultdict(list)
    for record in visma:
        if record.unmappable is not None:
            report(Outcome.UNMAPPABLE, record, detail=record.unmappable)
        else:
            mapped[record.key].append(record)
    for key, records in mapped.items():
        copies = held.get(key, [])
        if len(copies) > len(records):
            # More Basware records than Visma ones under this key: a second upload.
            ids = tuple(c.basware_id for c in copies if c.basware_id)
            statuses = ", ".join(sorted({c.status for c in copies if c.status}))
            for record in records:
                report(Outcome.DUPLICATE, record, basware_ids=ids, basware_status=statuses or None)
            continue
        # Each Visma record takes one Basware record of its key, an equal one first: two
        # Visma invoices may carry the same supplier invoice number.
        for record, copy in paired(records, copies):
            if copy is None:
                report(Outcome.MISSING, record)
                continue
            fields = field_differences(record, copy)
            report(
                Outcome.DIFFERENT if fields else Outcome.EQUAL,
                record,
                fields=fields,
                basware_ids=(copy.basware_id,) if copy.basware_id else (),
                basware_status=copy.status,
            )
    seen = {r.key for r in visma}
    if extras:
        for key in sorted(set(held) - seen):
            for copy in held[key]:
                ids = (copy.basware_id,) if copy.basware_id else ()
                report(Outcome.EXTRA, copy, basware_ids=ids, basware_status=copy.status)
    return EntityReport(totals=totals, differences=differences)

"""Change events as the writer keeps them: grouped per record, and stored as JSON in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from pydantic import TypeAdapter

from mlconnector.contracts import AnyChange, ChangeEvent, Entity

RecordRef = tuple[Entity, str]

# Each stored change keeps its own type (supplier, order or invoice), told by its entity.
_STORED = cast("TypeAdapter[tuple[ChangeEvent, ...]]", TypeAdapter(tuple[AnyChange, ...]))


def dump_changes(changes: Sequence[ChangeEvent]) -> str:
    return _STORED.dump_json(tuple(changes)).decode()


def load_changes(stored: str) -> tuple[ChangeEvent, ...]:
    return _STORED.validate_json(stored)


def ref_of(change: ChangeEvent) -> RecordRef:
    return (change.entity, change.entity_id)


def per_record(changes: Sequence[ChangeEvent]) -> list[tuple[ChangeEvent, ...]]:
    """The changes of each record in Kafka order, records ordered by their last change.

    Only a record's last change is sent; the earlier ones are superseded by it and share
    its outcome.
    """
    groups: dict[RecordRef, list[ChangeEvent]] = {}
    for change in changes:
        group = groups.pop(ref_of(change), [])
        group.append(change)
        groups[ref_of(change)] = group
    return [tuple(group) for group in groups.values()]

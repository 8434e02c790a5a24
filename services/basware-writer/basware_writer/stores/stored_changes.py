"""Change events as the writer's tables keep them: JSON, each change with its own type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from pydantic import TypeAdapter

from mlconnector.contracts import AnyChange, ChangeEvent

# Each stored change keeps its own type (supplier, order or invoice), told by its entity.
_STORED = cast("TypeAdapter[tuple[ChangeEvent, ...]]", TypeAdapter(tuple[AnyChange, ...]))


def dump_changes(changes: Sequence[ChangeEvent]) -> str:
    return _STORED.dump_json(tuple(changes)).decode()


def load_changes(stored: str) -> tuple[ChangeEvent, ...]:
    return _STORED.validate_json(stored)

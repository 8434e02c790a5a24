"""Why something could not be read, by field and never by value: a body or a Visma row may
carry what no log, event or page should (docs/architecture.md §4)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

# Pydantic messages that quote the input itself: replaced by words of our own.
_QUOTING_ERRORS = {"union_tag_invalid": "matches none of the known types"}


class FieldProblem(BaseModel):
    """Where a field is (its path) and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    field: str
    problem: str


def field_problems(error: ValidationError) -> tuple[FieldProblem, ...]:
    """Every complaint of a validation, by field, without the values."""
    return tuple(
        FieldProblem(
            field=".".join(str(part) for part in item["loc"]) or "body",
            problem=_QUOTING_ERRORS.get(item["type"], item["msg"]),
        )
        for item in error.errors(include_input=False, include_url=False, include_context=False)
    )

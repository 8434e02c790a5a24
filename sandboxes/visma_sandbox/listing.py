"""Reading a list request's query string: filters, date conditions, paging and expansions.

Query names are matched case-insensitively (docs/visma-net.md §4) and unknown ones are
ignored (docs/visma-net.md §5.3). Date filters accept exactly the five documented formats;
anything else, a `Z` or an offset included, is a 400 in the IPP shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from visma_sandbox.entities import EntitySpec
from visma_sandbox.store import CONDITIONS, DateCondition, ListQuery, NumberCondition
from visma_sandbox.timefmt import parse_filter_datetime

_DATE_FORMATS = "yyyy-MM-dd, yyyy-MM-dd HH:mm:ss, yyyy-MM-dd HH:mm:ss.FFF, yyyy-MM-ddTHH:mm:ss, yyyy-MM-ddTHH:mm:ss.FFF"  # noqa: E501


class QueryError(ValueError):
    """A list request the API refuses with 400; the message is what the client sees."""


@dataclass(frozen=True)
class ListRequest:
    query: ListQuery
    page_number: int
    page_size: int
    omit: frozenset[str]


def lower_query(items: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """(values by lower-cased name, the name as the client spelt it); the first value wins."""
    values: dict[str, str] = {}
    spelt: dict[str, str] = {}
    for name, value in items:
        values.setdefault(name.lower(), value)
        spelt.setdefault(name.lower(), name)
    return values, spelt


def _bool(value: str, name: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise QueryError(f"The value '{value}' is not valid for {name}.")


def _positive_int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"The value '{value}' is not valid for {name}.") from None
    if number < 1:
        raise QueryError(f"{name} must be greater than zero.")
    return number


def _conditioned(
    values: Mapping[str, str], spelt: Mapping[str, str], name: str
) -> tuple[str, str] | None:
    value, condition = values.get(name), values.get(name + "condition")
    if value is None and condition is None:
        return None
    shown = spelt.get(name, name)
    if value is None or condition is None:
        raise QueryError(f"{shown} and {shown}Condition are mutually inclusive.")
    if condition not in CONDITIONS:
        raise QueryError(f"The condition '{condition}' is not valid. Accepted: >, <, >=, <=.")
    return value, condition


def parse_list_request(
    spec: EntitySpec, values: Mapping[str, str], spelt: Mapping[str, str], max_page_size: int
) -> ListRequest:
    equals = tuple((name, values[name]) for name in spec.equals if values.get(name, "") != "")
    flags = tuple((name, _bool(values[name], spelt[name])) for name in spec.flags if name in values)
    dates = []
    for name in ("lastmodifieddatetime", "createddatetime", *spec.dates):
        found = _conditioned(values, spelt, name)
        if found is None:
            continue
        parsed = parse_filter_datetime(found[0])
        if parsed is None:
            raise QueryError(
                f"The value '{found[0]}' of {spelt[name]} is not in an accepted format "
                f"({_DATE_FORMATS})."
            )
        dates.append(DateCondition(name, found[1], parsed))
    numbers = []
    for name in spec.numbers:
        found = _conditioned(values, spelt, name)
        if found is None:
            continue
        try:
            numbers.append(NumberCondition(name, found[1], float(found[0])))
        except ValueError:
            raise QueryError(f"The value '{found[0]}' is not valid for {spelt[name]}.") from None
    omit = frozenset(
        field
        for name, (field, default) in spec.expansions.items()
        if not (_bool(values[name], spelt[name]) if name in values else default)
    )
    # pageSize over the maximum is clamped, not refused (docs/visma-net.md §6.1);
    # numberToRead/skipRecords are ignored because paging is enforced.
    page_size = min(_positive_int(values.get("pagesize"), "pageSize", max_page_size), max_page_size)
    return ListRequest(
        query=ListQuery(
            equals=equals,
            dates=tuple(dates),
            numbers=tuple(numbers),
            flags=flags,
            greater_than=values.get("greaterthanvalue") or None,
        ),
        page_number=_positive_int(values.get("pagenumber"), "pageNumber", 1),
        page_size=page_size,
        omit=omit,
    )

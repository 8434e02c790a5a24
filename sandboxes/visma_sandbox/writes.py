"""Write bodies as the service API takes them (docs/visma-net.md §7.6, §12 point 10).

Every member of a written object is wrapped as `{"value": ...}` (the `DtoValueOf*` types of
Visma's OpenAPI file); a wrapped object is written the same way inside, and arrays of lines
carry bare objects with an `operation`. A bare scalar is refused with 400, so a client that
forgets the wrapper finds out here rather than against Visma. Field names are the read
names; Visma's update DTOs differ in places (e.g. `creditTermsId`), which the sandbox does not
model.
"""

from __future__ import annotations

import json
from typing import Any

# What a supplier invoice PUT may change here: text only, never a financial field.
INVOICE_WRITABLE = ("note", "description")


class WriteError(ValueError):
    """A write the API refuses with 400; the message is what the client sees."""


def _unwrap_object(body: dict[str, Any], where: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, member in body.items():
        path = f"{where}{name}"
        if name == "operation" and isinstance(member, str):
            fields[name] = member
        elif isinstance(member, list):
            fields[name] = [_unwrap_line(line, f"{path}[{i}].") for i, line in enumerate(member)]
        elif isinstance(member, dict) and member.keys() == {"value"}:
            fields[name] = _unwrap_value(member["value"], path + ".")
        else:
            raise WriteError(f'{path} must be written as {{"value": ...}}.')
    return fields


def _unwrap_line(line: object, where: str) -> dict[str, Any]:
    if not isinstance(line, dict):
        raise WriteError(f"{where.rstrip('.')} must be an object.")
    return _unwrap_object(line, where)


def _unwrap_value(value: object, where: str) -> object:
    if isinstance(value, dict):
        return _unwrap_object(value, where)
    if isinstance(value, list):
        return [_unwrap_line(item, f"{where.rstrip('.')}[{i}].") for i, item in enumerate(value)]
    return value


def read_write_body(raw: bytes) -> dict[str, Any]:
    """The plain field values of a `{"value": ...}`-wrapped JSON object."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise WriteError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise WriteError("The request body must be a JSON object.")
    return _unwrap_object(body, "")


def invoice_changes(fields: dict[str, Any]) -> dict[str, Any]:
    """The text fields of a supplier invoice PUT; anything else in the body is ignored."""
    changes = {name: fields[name] for name in INVOICE_WRITABLE if name in fields}
    for name, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise WriteError(f"{name} must be a string.")
    return changes

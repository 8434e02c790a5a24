"""Request validation against Basware's own schemas (the packaged subset of its OpenAPI files).

Basware's files are OpenAPI 3.0, where `nullable: true` widens a type to null; they are
translated to JSON Schema once at load time and checked, formats included, with jsonschema-rs
(hundreds of times faster than pure-Python jsonschema: a 200-vendor POST takes well under a
millisecond, so validation never limits a benchmark).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

PACKAGED = Path(__file__).parent / "data" / "basware-schemas.json"


@dataclass(frozen=True)
class SchemaProblem:
    """One reason a document does not match its schema, with where in the document it is."""

    path: str
    message: str


def _as_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _as_json_schema(v) for k, v in node.items() if k != "nullable"}
    if not node.get("nullable"):
        return converted
    if "$ref" in converted:
        return {"anyOf": [converted, {"type": "null"}]}
    if isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    if "enum" in converted:
        converted["enum"] = [*converted["enum"], None]
    return converted


@cache
def _components(api: str) -> dict[str, Any]:
    documents = json.loads(PACKAGED.read_text(encoding="utf-8"))
    components: dict[str, Any] = _as_json_schema(documents[api]["components"])
    return components


@cache
def validator(api: str, schema: str, *, array: bool = False) -> Any:
    """A validator for components/schemas/<schema> of one API ("p2p", "push", "smartpdf")."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    # The schemas travel with the root, so every "#/components/..." reference resolves locally.
    root = {"components": _components(api), **({"type": "array", "items": ref} if array else ref)}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def problems(api: str, schema: str, document: Any, *, array: bool = False) -> list[SchemaProblem]:
    found = [
        SchemaProblem(path="/".join(str(p) for p in error.instance_path), message=error.message)
        for error in validator(api, schema, array=array).iter_errors(document)
    ]
    return sorted(found, key=lambda p: (p.path, p.message))

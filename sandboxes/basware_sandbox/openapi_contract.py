"""Checks real HTTP exchanges against Basware's own OpenAPI files, for contract tests.

It reads the original files (not the subset the sandbox validates with), finds the operation
of each request by method and path template, and checks the request body, the status code
and the response body against what that operation declares. Answers fetched from a 302's
storage URL are checked against the operation that redirected there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_FILES = (
    "basware-p2p-openapi.json",
    "basware-authentication-openapi.json",
    "basware-push-notification-openapi.json",
    "basware-smart-pdf-openapi.json",
)
JSON_MEDIA = ("application/json", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Operation:
    spec: str
    method: str
    template: str
    pattern: re.Pattern[str]

    def pointer(self, *parts: str) -> str:
        escaped = [
            p.replace("~", "~0").replace("/", "~1")
            for p in ("paths", self.template, self.method, *parts)
        ]
        return f"urn:basware:{self.spec}#/" + "/".join(escaped)


@dataclass
class Exchange:
    method: str
    path: str
    operation: Operation | None
    status: int
    authorization: bool
    problems: list[str] = field(default_factory=list)


def _template_pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")


class OpenApiContract:
    def __init__(self, reference_dir: Path) -> None:
        self.specs: dict[str, dict[str, Any]] = {}
        resources = []
        operations: list[Operation] = []
        for filename in SPEC_FILES:
            spec = json.loads((reference_dir / filename).read_text(encoding="utf-8"))
            name = filename.removesuffix("-openapi.json").removeprefix("basware-")
            self.specs[name] = spec
            resources.append(
                (f"urn:basware:{name}", Resource.from_contents(spec, default_specification=DRAFT4))
            )
            for template, item in spec["paths"].items():
                for method in item:
                    if method in ("get", "post", "put", "patch", "delete"):
                        operations.append(
                            Operation(name, method, template, _template_pattern(template))
                        )
        # Literal paths win over templates (/v1/requestStatus/acknowledge over /{requestId}).
        operations.sort(key=lambda op: op.template.count("{"))
        self.operations = operations
        self.registry: Registry = Registry().with_resources(resources)
        self.exchanges: list[Exchange] = []
        # Every operation an exchange was checked against, kept across clear().
        self.covered: set[str] = set()
        self._redirects: dict[str, Operation] = {}

    def operation(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.lower() and op.pattern.match(path):
                return op
        return None

    def _node(self, op: Operation, *parts: str) -> Any:
        node: Any = self.specs[op.spec]["paths"][op.template][op.method]
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def _validate(self, ref: str, document: Any, *, writing: bool) -> list[str]:
        validator: Any
        if ref.startswith("urn:basware:push-notification#"):
            # FastAPI wrote this file: it says 3.0.2 but spells nullable as OpenAPI 3.1 does
            # ({"type": "null"}), which only a 3.1 validator understands.
            validator = OAS31Validator(
                {"$ref": ref}, registry=self.registry, format_checker=oas31_format_checker
            )
        else:
            kind = OAS30WriteValidator if writing else OAS30ReadValidator
            validator = kind(
                {"$ref": ref}, registry=self.registry, format_checker=oas30_format_checker
            )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(document)
        ]

    def check_schema(self, spec: str, schema: str, document: Any) -> list[str]:
        """Problems of a document against components/schemas/<schema> of one spec file."""
        return self._validate(
            f"urn:basware:{spec}#/components/schemas/{schema}", document, writing=False
        )

    def clear(self) -> None:
        self.exchanges.clear()

    def check_request(self, request: httpx.Request, op: Operation) -> list[str]:
        content = self._node(op, "requestBody", "content") or {}
        media = next((m for m in JSON_MEDIA if m in content), None)
        if media is None or not request.content:
            required = bool(self._node(op, "requestBody", "required"))
            return (
                ["request body required but none sent"] if required and not request.content else []
            )
        if media == "application/x-www-form-urlencoded":
            document: Any = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        else:
            document = json.loads(request.content)
        return self._validate(
            op.pointer("requestBody", "content", media, "schema"), document, writing=True
        )

    def check_response(self, response: httpx.Response, op: Operation) -> list[str]:
        responses = self._node(op, "responses") or {}
        status = str(response.status_code)
        if status not in responses:
            return [f"status {status} is not declared for {op.method.upper()} {op.template}"]
        content = responses[status].get("content") or {}
        if "application/json" not in content or "schema" not in content["application/json"]:
            return []
        if not response.content:
            return ["declared a JSON body, got none"]
        pointer = op.pointer("responses", status, "content", "application/json", "schema")
        return self._validate(pointer, response.json(), writing=False)

    # --- httpx event hooks: record and check everything a client sends and receives ---

    def hooks(self) -> dict[str, list[Any]]:
        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            self.record(response)

        return {"response": [on_response]}

    def record(self, response: httpx.Response) -> Exchange:
        request = response.request
        path = request.url.path
        redirected_from = self._redirects.pop(str(request.url), None)
        op = redirected_from or self.operation(request.method, path)
        exchange = Exchange(
            method=request.method,
            path=path,
            operation=op,
            status=response.status_code,
            authorization="authorization" in request.headers,
        )
        if op is not None:
            self.covered.add(f"{op.method.upper()} {op.template}")
            if redirected_from is None:
                exchange.problems += [f"request: {p}" for p in self.check_request(request, op)]
            if response.status_code == 302:
                self._redirects[urljoin_location(response)] = op
            else:
                exchange.problems += [f"response: {p}" for p in self.check_response(response, op)]
        self.exchanges.append(exchange)
        return exchange

    def problems(self) -> list[str]:
        return [
            f"{e.method} {e.path} -> {e.status}: {p}" for e in self.exchanges for p in e.problems
        ]


def urljoin_location(response: httpx.Response) -> str:
    return str(response.url.join(response.headers["location"]))

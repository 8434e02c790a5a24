"""Background mode: `erp-api-background` (docs/visma-net.md §7.7, §12 point 14).

A call with the header is answered 202 `{"id", "stateLocation"}` at once and runs as a job;
`GET /v1/background/{id}` shows its state (the field names of the BackgroundRequestStateDto
in Visma's OpenAPI file) and `/content` its payload. Header values: `none` (no
notification) and `subscription[:name=value,...]` (a "Background API Operation / Response
Ready" webhook, the pairs sent as request headers). The URL form was retired on 2025-04-30
and is refused. Visma does not publish the `status` values; "Queued", "Processing" and
"Finished" are invented, and a job whose call failed is "Finished" with its statusCode.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

HEADER = "erp-api-background"
WEBHOOK_ENTITY = "Background API Operation"
WEBHOOK_EVENT = "Response Ready"
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class BackgroundHeaderError(ValueError):
    """An `erp-api-background` value the API refuses with 400."""


@dataclass(frozen=True)
class BackgroundMode:
    notify: bool  # "subscription": a webhook when the job is finished
    headers: dict[str, str] = field(default_factory=dict)


def parse_background_header(value: str) -> BackgroundMode:
    text = value.strip()
    if text.lower() == "none":
        return BackgroundMode(notify=False)
    kind, sep, pairs = text.partition(":")
    if kind.strip().lower() != "subscription":
        raise BackgroundHeaderError(
            f"Invalid {HEADER} value '{text}'. Supported: none, subscription[:name=value,...] "
            "(the URL form was retired on 2025-04-30)."
        )
    headers: dict[str, str] = {}
    for pair in pairs.split(",") if sep and pairs.strip() else []:
        name, eq, pair_value = pair.partition("=")
        if not eq or not _HEADER_NAME.fullmatch(name.strip()):
            raise BackgroundHeaderError(f"Invalid name-value pair '{pair}' in {HEADER}.")
        headers[name.strip()] = pair_value.strip()
    return BackgroundMode(notify=True, headers=headers)


def utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BackgroundAccepted(BaseModel):
    id: str
    stateLocation: str


class BackgroundState(BaseModel):
    id: str
    status: Literal["Queued", "Processing", "Finished"] = "Queued"
    statusCode: int | None = None
    receivedUtc: str
    startedUtc: str | None = None
    finishedUtc: str | None = None
    webhookAddress: str | None = None
    errorMessage: str | None = None
    reference: str | None = None
    originalUri: str
    hasResponseContent: bool = False
    hasRequestContent: bool = False
    contentLocation: str | None = None
    responseHeaders: dict[str, str] = {}


@dataclass
class BackgroundJob:
    state: BackgroundState
    state_location: str
    content: bytes = b""
    media_type: str | None = None

    def start(self) -> None:
        self.state.status = "Processing"
        self.state.startedUtc = utc_text(datetime.now(UTC))

    def finish(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        state = self.state
        state.status = "Finished"
        state.finishedUtc = utc_text(datetime.now(UTC))
        state.statusCode = status
        state.responseHeaders = headers
        state.hasResponseContent = bool(body)
        state.contentLocation = f"{self.state_location}/content" if body else None
        state.errorMessage = _error_message(body) if status >= 400 else None
        self.content = body
        self.media_type = headers.get("content-type")


def _error_message(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    message = parsed.get("ExceptionMessage") or parsed.get("Message") or parsed.get("message")
    return str(message) if message is not None else None

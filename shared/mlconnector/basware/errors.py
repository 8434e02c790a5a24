"""Typed failures of Basware calls. Messages name the call and Basware's reasons, never secrets.

The client does not retry: basware-writer owns retries and a shared rate budget, so a 429 or a
5xx is raised at once with its Retry-After, and the caller decides.
"""

from __future__ import annotations

import json
import re

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from mlconnector.basware.models import AcceptedRequest
from mlconnector.retry import parse_retry_after


class BaswareErrorDetail(BaseModel):
    """One reason Basware gave (ErrorEntity of a ResponseEntityList, or another service's shape)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    message: str
    code: str | None = None
    type: str | None = None
    external_code: str | None = None
    info: str | None = None


class BaswareError(Exception):
    """Any failed Basware call. `accepted` lists batches an upsert got accepted before it failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.accepted: list[AcceptedRequest] = []


class BaswareUnavailable(BaswareError):
    """5xx, or no answer at all (connection refused, dropped, timed out): worth retrying."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BaswareRateLimited(BaswareError):
    """429: retry after `retry_after` seconds when Basware said so."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = 429
        self.retry_after = retry_after


class BaswareAuthError(BaswareError):
    """Credentials, token, scope or region refused (token endpoint errors, 401, 403)."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class BaswareRejected(BaswareError):
    """A 4xx with Basware's reasons: the request itself is wrong and resending it will not help."""

    def __init__(self, message: str, *, status: int, errors: list[BaswareErrorDetail]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class BaswareNotFound(BaswareRejected):
    """404 where a record was expected (for lists Basware means "no records"; not raised then)."""


class BaswarePending(BaswareError, TimeoutError):
    """requestStatus was still in progress when the caller stopped waiting."""


class BaswarePayloadTooLarge(BaswareError):
    """A single record is larger than Basware's request limit, so no batch can carry it."""


_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)


def error_details(response: httpx.Response) -> list[BaswareErrorDetail]:
    """Basware's reasons from any of its services' error bodies."""
    text = response.text
    if not text:
        return []
    try:
        body = json.loads(text)
    except ValueError:
        found = _XML_MESSAGE.search(text)
        return [BaswareErrorDetail(message=found.group(1))] if found else []
    if not isinstance(body, dict):
        return []
    if isinstance(body.get("errors"), list):  # P2P ResponseEntityList
        return [
            BaswareErrorDetail.model_validate(
                {**e, "message": e.get("message") or e.get("code") or ""}
            )
            for e in body["errors"]
            if isinstance(e, dict)
        ]
    if isinstance(body.get("errorMessages"), list):  # push notification API
        return [
            BaswareErrorDetail.model_validate(e)
            for e in body["errorMessages"]
            if isinstance(e, dict)
        ]
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI validation errors
        return [
            BaswareErrorDetail(message=str(d.get("msg")), info=".".join(map(str, d.get("loc", []))))
            for d in detail
            if isinstance(d, dict)
        ]
    if "error" in body:  # token endpoint
        description = body.get("error_description")
        message = f"{body['error']}: {description}" if description else str(body["error"])
        return [BaswareErrorDetail(message=message, code=str(body["error"]))]
    for key in ("detail", "message", "Message"):
        if isinstance(body.get(key), str):
            return [BaswareErrorDetail(message=body[key])]
    return []


def error_for(response: httpx.Response, call: str) -> BaswareError:
    """The typed error for a failed answer; `call` is e.g. "POST /v1/vendors" (no query string)."""
    status = response.status_code
    details = error_details(response)
    reasons = "; ".join(d.message for d in details[:5]) or response.reason_phrase
    message = f"Basware {call}: HTTP {status}: {reasons}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        return BaswareRateLimited(message, retry_after=retry_after)
    if status >= 500:
        return BaswareUnavailable(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        reason = details[0].code if details and details[0].code else None
        return BaswareAuthError(message, status=status, reason=reason)
    if status == 404:
        return BaswareNotFound(message, status=status, errors=details)
    return BaswareRejected(message, status=status, errors=details)


def transport_error(exc: httpx.TransportError, call: str) -> BaswareUnavailable:
    return BaswareUnavailable(f"Basware {call}: no answer ({type(exc).__name__})")

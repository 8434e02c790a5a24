"""Error bodies in the API's two shapes (docs/visma-net.md §9), and JSON responses.

IPP shape for ERP application errors (400/404/409/412/500), `{"Message": ...}` for
authentication failures and unknown routes, API Management's `{"statusCode", "message"}` for
429 and the synchronous timeout. Fault codes 12002 and 12027 are documented; for
other errors the sandbox uses the HTTP status as the code (an invention: Visma's other codes
are not published).
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

NO_LICENCE = "12027"
INVALID_COMPANY = "12002"


class IppError(BaseModel):
    model_config = ConfigDict(frozen=True)

    ExceptionType: str = "IPPException"
    ExceptionMessage: str
    ExceptionFaultCode: str
    ExceptionMessageID: str
    ExceptionDetails: str = ""


class MessageError(BaseModel):
    Message: str


class GatewayError(BaseModel):
    """Azure API Management's default body (429 and the synchronous timeout's 504)."""

    statusCode: int
    message: str


def json_response(
    body: BaseModel | bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else body.model_dump_json().encode()
    return Response(content, status, headers, media_type="application/json; charset=utf-8")


def ipp_error(status: int, message: str, code: str | None = None) -> Response:
    visma_id = str(uuid.uuid4())
    fault = code or str(status)
    return json_response(
        IppError(
            ExceptionMessage=f"VismaId: {visma_id}. {message}",
            ExceptionFaultCode=fault,
            ExceptionMessageID=f"{fault}_{visma_id}",
        ),
        status,
    )


def message_error(status: int, message: str) -> Response:
    return json_response(MessageError(Message=message), status)


def too_many_requests(retry_after: int, reason: str = "Rate limit is exceeded.") -> Response:
    body = GatewayError(statusCode=429, message=f"{reason} Try again in {retry_after} seconds.")
    return json_response(body, 429, {"Retry-After": str(retry_after)})


def gateway_timeout(seconds: float) -> Response:
    """A synchronous call that ran past the limit (invented body: Visma publishes none)."""
    message = (
        f"The request did not complete within {seconds:g} seconds. "
        "Use the erp-api-background header for long-running calls."
    )
    return json_response(GatewayError(statusCode=504, message=message), 504)

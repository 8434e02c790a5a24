"""Typed errors for Visma Connect and the ERP API, with messages that say what to fix.

Messages name the call, the status and Visma's own text; they never carry a secret (no
token, no client secret, no request body).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

NO_LICENCE = "12027"
INVALID_COMPANY = "12002"


class VismaError(Exception):
    """Anything that went wrong talking to Visma."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        fault_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.fault_code = fault_code
        self.request_id = request_id


class VismaAuthError(VismaError):
    """Visma Connect refused to issue a token (wrong secret, tenant, scope or approval)."""


class VismaUnauthorizedError(VismaError):
    """The API refused a freshly fetched token (401)."""


class VismaCompanyError(VismaError):
    """The company id is wrong for this token (12002, `ipp-company-id`)."""


class VismaNoLicenceError(VismaError):
    """12027: the token's tenant holds no licence for the company (customer vs company tenant)."""


class VismaForbiddenError(VismaError):
    """403: the token lacks the scope the call needs."""


class VismaNotFoundError(VismaError):
    pass


class VismaBadRequestError(VismaError):
    pass


class VismaPreconditionFailedError(VismaError):
    """412: the record changed since its ETag was read."""


class VismaRateLimitedError(VismaError):
    """429 still answered after every retry."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class VismaServerError(VismaError):
    """5xx still answered after every retry."""


class VismaUnavailableError(VismaError):
    """The connection failed on every retry (timeouts, refused, reset)."""


class IppErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ExceptionType: str | None = None
    ExceptionMessage: str | None = None
    ExceptionFaultCode: str | None = None
    ExceptionMessageID: str | None = None


class TokenErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: str = "unknown_error"
    error_description: str | None = None


_TOKEN_HINTS = {
    "invalid_client": "the client id or client secret is wrong",
    "invalid_tenant": "the tenant id is unknown or the application is not entitled to it",
    "invalid_scope": "the application is not approved for the requested scopes",
    "invalid_grant": "the tenant administrator has not approved the application",
    "unsupported_grant_type": "the endpoint does not accept client_credentials",
}


def _server_text(body: bytes) -> tuple[str, str | None]:
    """Visma's message and fault code from an IPP body, a {"Message"} body or plain text."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if "ExceptionMessage" in parsed or "ExceptionFaultCode" in parsed:
            try:
                ipp = IppErrorBody.model_validate(parsed)
            except ValidationError:
                ipp = IppErrorBody()
            return ipp.ExceptionMessage or "", ipp.ExceptionFaultCode
        for name in ("Message", "message"):
            if isinstance(parsed.get(name), str):
                return str(parsed[name]), None
    return body[:200].decode("utf-8", errors="replace"), None


def api_error(
    method: str,
    path: str,
    status: int,
    body: bytes,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    company_id: str = "",
) -> VismaError:
    """The typed error for an ERP API answer that is not a success."""
    text, code = _server_text(body)
    where = f"Visma {method} {path} answered {status}"
    details = {"status": status, "fault_code": code, "request_id": request_id}
    if code == NO_LICENCE:
        return VismaNoLicenceError(
            f"{where}: no licence for company {company_id} (12027). The token was probably "
            f"minted with the customer's tenant id; use the company's tenant id. ({text})",
            **details,  # type: ignore[arg-type]
        )
    if code == INVALID_COMPANY:
        return VismaCompanyError(
            f"{where}: company id {company_id!r} is not the company of this token "
            f"(ipp-company-id, 12002). ({text})",
            **details,  # type: ignore[arg-type]
        )
    kinds: dict[int, tuple[type[VismaError], str]] = {
        400: (VismaBadRequestError, "bad request"),
        401: (VismaUnauthorizedError, "the token was refused even after fetching a new one"),
        403: (VismaForbiddenError, "the token lacks the scope this call needs"),
        404: (VismaNotFoundError, "not found"),
        412: (VismaPreconditionFailedError, "the record changed since it was read (ETag)"),
    }
    if status == 429:
        return VismaRateLimitedError(
            f"{where}: rate limit still exceeded after retries. ({text})",
            retry_after=retry_after,
            **details,
        )
    if status >= 500:
        return VismaServerError(f"{where}: server error after retries. ({text})", **details)  # type: ignore[arg-type]
    kind, explanation = kinds.get(status, (VismaError, "unexpected answer"))
    return kind(f"{where}: {explanation}. ({text})", **details)  # type: ignore[arg-type]


def token_error(status: int, body: bytes, *, client_id: str, tenant_id: str) -> VismaAuthError:
    """The typed error for a refused token request (IdentityServer `{"error": ...}`)."""
    try:
        parsed = TokenErrorBody.model_validate_json(body)
    except ValidationError:
        parsed = TokenErrorBody(error_description=body[:200].decode("utf-8", errors="replace"))
    hint = _TOKEN_HINTS.get(parsed.error, "see the error description")
    description = f" ({parsed.error_description})" if parsed.error_description else ""
    return VismaAuthError(
        f"Visma Connect refused a token for client {client_id!r}, tenant {tenant_id!r}: "
        f"{parsed.error}: {hint}{description}.",
        status=status,
        fault_code=parsed.error,
    )

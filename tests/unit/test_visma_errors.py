"""Typed errors from Visma's answers, with useful and secret-free messages."""

from __future__ import annotations

import json

import pytest

from mlconnector.visma.errors import (
    VismaAuthError,
    VismaBadRequestError,
    VismaCompanyError,
    VismaError,
    VismaForbiddenError,
    VismaNoLicenceError,
    VismaNotFoundError,
    VismaPreconditionFailedError,
    VismaRateLimitedError,
    VismaServerError,
    VismaUnauthorizedError,
    api_error,
    token_error,
)


def ipp(code: str, message: str) -> bytes:
    return json.dumps(
        {
            "ExceptionType": "IPPException",
            "ExceptionMessage": message,
            "ExceptionFaultCode": code,
            "ExceptionMessageID": f"{code}_3b1c",
            "ExceptionDetails": "",
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, ipp("12027", "No license for this company."), VismaNoLicenceError),
        (400, ipp("12002", "Invalid parameter exception: ipp-company-id"), VismaCompanyError),
        (401, ipp("12002", "Invalid parameter exception: ipp-company-id"), VismaCompanyError),
        (
            401,
            b'{"Message":"Authorization has been denied for this request."}',
            VismaUnauthorizedError,
        ),
        (403, b'{"Message":"The token lacks the scope x."}', VismaForbiddenError),
        (404, ipp("404", "VismaId: 1. supplier 9 not found."), VismaNotFoundError),
        (400, ipp("400", "VismaId: 2. bad date"), VismaBadRequestError),
        (412, ipp("412", "changed"), VismaPreconditionFailedError),
        (
            429,
            b'{"statusCode":429,"message":"Rate limit is exceeded. Try again in 5 seconds."}',
            VismaRateLimitedError,
        ),
        (503, b"<html>Service Unavailable</html>", VismaServerError),
        (418, b"", VismaError),
    ],
)
def test_answers_map_to_typed_errors(status: int, body: bytes, kind: type[VismaError]) -> None:
    error = api_error("GET", "supplier/9", status, body, request_id="r-1", company_id="1000001")
    assert type(error) is kind
    assert error.status == status
    assert error.request_id == "r-1"
    assert "GET supplier/9" in str(error)


def test_the_no_licence_message_says_what_to_fix() -> None:
    error = api_error(
        "GET", "supplier", 401, ipp("12027", "No license for this company."), company_id="1000001"
    )
    assert error.fault_code == "12027"
    assert "customer's tenant id" in str(error)
    assert "No license for this company." in str(error)


def test_vismas_message_comes_through_from_either_shape() -> None:
    lower = api_error("GET", "x", 404, b'{"message":"Resource not found"}')
    assert "Resource not found" in str(lower)
    rate = api_error("GET", "x", 429, b"{}", retry_after=7.0)
    assert isinstance(rate, VismaRateLimitedError)
    assert rate.retry_after == 7.0


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ("invalid_client", "client id or client secret is wrong"),
        ("invalid_tenant", "tenant id is unknown"),
        ("invalid_scope", "scopes"),
        ("invalid_grant", "not approved"),
    ],
)
def test_token_refusals_explain_themselves(error: str, hint: str) -> None:
    refused = token_error(
        400, json.dumps({"error": error}).encode(), client_id="c-1", tenant_id="t-1"
    )
    assert isinstance(refused, VismaAuthError)
    assert refused.fault_code == error
    assert hint in str(refused)
    assert "c-1" in str(refused)
    assert "t-1" in str(refused)


def test_a_token_refusal_that_is_not_json_still_reads() -> None:
    refused = token_error(502, b"Bad gateway", client_id="c", tenant_id="t")
    assert "Bad gateway" in str(refused)

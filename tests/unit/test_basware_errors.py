"""Basware answers turned into typed errors, with Basware's reasons and no secrets."""

from __future__ import annotations

import json

import httpx
import pytest

from mlconnector.basware import (
    BaswareAuthError,
    BaswareNotFound,
    BaswareRateLimited,
    BaswareRejected,
    BaswareUnavailable,
)
from mlconnector.basware.errors import error_details, error_for


def answer(
    status: int, body: object | str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = (
        body if isinstance(body, str) else (b"" if body is None else json.dumps(body).encode())
    )
    request = httpx.Request("POST", "https://api.basware.com/v1/vendors?secret=not-shown")
    return httpx.Response(status, content=content, headers=headers, request=request)


def test_rate_limit_carries_retry_after() -> None:
    error = error_for(
        answer(429, {"message": "Too Many Requests"}, {"Retry-After": "12"}), "POST /v1/vendors"
    )

    assert isinstance(error, BaswareRateLimited)
    assert error.retry_after == 12.0
    assert "Too Many Requests" in str(error)


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, 4.0), (504, None)])
def test_server_errors_are_unavailable(status: int, retry_after: float | None) -> None:
    headers = {"Retry-After": "4"} if retry_after else None

    error = error_for(answer(status, {"message": "Internal server error"}, headers), "GET /v1/x")

    assert isinstance(error, BaswareUnavailable)
    assert (error.status, error.retry_after) == (status, retry_after)


def test_rejection_lists_basware_reasons() -> None:
    body = {
        "requestId": "r-1",
        "hasErrors": True,
        "errors": [
            {
                "externalCode": "V-1",
                "type": "VALIDATION",
                "code": "SCHEMA_VALIDATION_ERROR",
                "message": "name is too long",
                "info": "0/name",
            }
        ],
    }

    error = error_for(answer(400, body), "POST /v1/vendors")

    assert isinstance(error, BaswareRejected)
    assert [(e.external_code, e.code, e.info) for e in error.errors] == [
        ("V-1", "SCHEMA_VALIDATION_ERROR", "0/name")
    ]
    assert str(error) == "Basware POST /v1/vendors: HTTP 400: name is too long"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures(status: int) -> None:
    assert isinstance(error_for(answer(status), "GET /v1/vendors"), BaswareAuthError)


def test_not_found_is_its_own_rejection() -> None:
    assert isinstance(error_for(answer(404), "GET /v1/vendors/x"), BaswareNotFound)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "invalid_client"}, "invalid_client"),
        (
            {"error": "invalid_request", "error_description": "scope field required"},
            "invalid_request: scope field required",
        ),
        (
            {
                "detail": [
                    {
                        "loc": ["body", "receivingEmailAddress"],
                        "msg": "field required",
                        "type": "missing",
                    }
                ]
            },
            "field required",
        ),
        (
            {
                "requestId": "x",
                "hasError": True,
                "errorMessages": [{"type": "VALIDATION", "code": "C", "message": "bad url"}],
            },
            "bad url",
        ),
        ({"detail": "Not Found"}, "Not Found"),
        (
            "<Error><Code>InvalidArgument</Code>"
            "<Message>Only one auth mechanism allowed</Message></Error>",
            "Only one auth mechanism allowed",
        ),
    ],
)
def test_every_basware_error_shape_is_read(body: object, message: str) -> None:
    assert error_details(answer(400, body))[0].message == message


def test_messages_never_carry_the_query_string() -> None:
    assert "not-shown" not in str(error_for(answer(400, {"message": "bad"}), "POST /v1/vendors"))

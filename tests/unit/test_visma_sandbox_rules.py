"""The Visma sandbox's pure rules: the erp-api-background header, the repeat rules and the
`{"value": ...}` write bodies."""

from __future__ import annotations

import pytest

from visma_sandbox.background import (
    BackgroundHeaderError,
    BackgroundMode,
    parse_background_header,
)
from visma_sandbox.ratelimit import RepeatGuard
from visma_sandbox.writes import WriteError, invoice_changes, read_write_body

SAME = ("tenant", "GET", "/v1/supplier", "pageNumber=1")


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("none", BackgroundMode(notify=False)),
        (" None ", BackgroundMode(notify=False)),
        ("subscription", BackgroundMode(notify=True)),
        ("subscription:", BackgroundMode(notify=True)),
        (
            "Subscription:a=1, b-c = two",
            BackgroundMode(notify=True, headers={"a": "1", "b-c": "two"}),
        ),
    ],
)
def test_background_values(value: str, mode: BackgroundMode) -> None:
    assert parse_background_header(value) == mode


@pytest.mark.parametrize(
    "value", ["", "https://example.com/hook", "subscription:novalue", "subscription:bad name=1"]
)
def test_retired_or_malformed_background_values(value: str) -> None:
    with pytest.raises(BackgroundHeaderError):
        parse_background_header(value)


def test_identical_requests_past_the_limit_wait_for_the_oldest_to_leave_the_window() -> None:
    guard = RepeatGuard()
    rule = (3, 60.0)
    assert [guard.check(SAME, t, same=rule, failing=None) for t in (0.0, 10.0, 20.0)] == [None] * 3
    assert guard.check(SAME, 30.0, same=rule, failing=None) == 30
    # The refused request took no slot: after the promised wait one goes through.
    assert guard.check(SAME, 60.0, same=rule, failing=None) is None
    other = (*SAME[:3], "pageNumber=2")
    assert guard.check(other, 60.0, same=rule, failing=None) is None


def test_a_request_that_failed_twice_is_refused_until_the_first_failure_expires() -> None:
    guard = RepeatGuard()
    rule = (2, 300.0)
    for t in (0.0, 100.0):
        assert guard.check(SAME, t, same=None, failing=rule) is None
        guard.failed(SAME, t)
    assert guard.check(SAME, 200.0, same=None, failing=rule) == 100
    assert guard.check(SAME, 300.0, same=None, failing=rule) is None


def test_write_bodies_are_unwrapped_at_every_level() -> None:
    body = (
        b'{"name": {"value": "A"}, "mainAddress": {"value": {"city": {"value": "Oslo"}}},'
        b' "lines": [{"operation": "Insert", "lineNbr": {"value": 1}}], "note": {"value": null}}'
    )
    assert read_write_body(body) == {
        "name": "A",
        "mainAddress": {"city": "Oslo"},
        "lines": [{"operation": "Insert", "lineNbr": 1}],
        "note": None,
    }


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "A"}',
        b'{"mainAddress": {"value": {"city": "Oslo"}}}',
        b'{"name": {"value": "A", "extra": 1}}',
        b'{"lines": ["x"]}',
        b"[1]",
        b"not json",
    ],
)
def test_unwrapped_or_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(WriteError):
        read_write_body(body)


def test_an_invoice_put_changes_text_only() -> None:
    fields = read_write_body(b'{"note": {"value": "Paid"}, "amount": {"value": 1.0}}')
    assert invoice_changes(fields) == {"note": "Paid"}
    with pytest.raises(WriteError):
        invoice_changes({"description": 5})

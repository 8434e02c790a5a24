"""INVOICE_FOLLOW_UP_*, and the gateway's MLC_GATEWAY_INVOICE_* names an existing deployment
still has."""

from __future__ import annotations

from datetime import timedelta

import pytest

from invoice_follow_up.settings import FollowUpSettings


def test_defaults() -> None:
    settings = FollowUpSettings()
    assert (settings.group, settings.check_interval, settings.claim_timeout) == (
        "invoice-follow-up",
        timedelta(minutes=5),
        timedelta(minutes=5),
    )
    assert settings.topics.invoice_status == settings.topics.basware_events == "basware.events"


def test_the_gateway_names_still_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_GATEWAY_INVOICE_LOOP_GROUP", "webhook-gateway.invoice-loop")
    monkeypatch.setenv("MLC_GATEWAY_INVOICE_CHECK_INTERVAL", "PT30S")
    monkeypatch.setenv("MLC_GATEWAY_INVOICE_CLAIM_TIMEOUT", "PT2M")
    settings = FollowUpSettings()
    assert (settings.group, settings.check_interval, settings.claim_timeout) == (
        "webhook-gateway.invoice-loop",
        timedelta(seconds=30),
        timedelta(minutes=2),
    )


def test_the_own_names_win_over_the_gateway_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_GATEWAY_INVOICE_CHECK_INTERVAL", "PT30S")
    monkeypatch.setenv("INVOICE_FOLLOW_UP_CHECK_INTERVAL", "PT1M")
    monkeypatch.setenv("INVOICE_FOLLOW_UP_GROUP", "follow-up-b")
    monkeypatch.setenv("INVOICE_FOLLOW_UP_TOPICS", '{"visma_changes": "visma.changes.b"}')
    settings = FollowUpSettings()
    assert (settings.check_interval, settings.group, settings.topics.visma_changes) == (
        timedelta(minutes=1),
        "follow-up-b",
        "visma.changes.b",
    )

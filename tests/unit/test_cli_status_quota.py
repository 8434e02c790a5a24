"""`mlconnector status`'s quota table: each company's calls used of the limit, when the window
resets, whether a backfill waits and until when, and when it can be done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlconnector.sync_status import (
    EntityProgress,
    EntityStatus,
    StatusReport,
    quota_statuses,
)
from mlconnector.visma.quota_plan import QuotaStanding
from mlconnector_cli.status import render_status

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_spent_backfill_shows_when_it_resumes_and_when_it_can_be_done() -> None:
    plan = QuotaStanding(
        company_id="1000001",
        client_id="client",
        quota_limit=15000,
        reserve_fraction=0.1,
        window_seconds=3600,
        used=13500,
        resets_at=NOW + timedelta(minutes=20),
        live_refused=0,
        bulk_refused=37,
        bulk_spent_at=NOW - timedelta(minutes=5),
        now=NOW,
    )
    invoices = EntityStatus(
        tenant="1000001",
        connection="acme",
        entity="supplier_invoice",
        progress=EntityProgress(delivered=13000, parked=500),
        visma_total=40000,
        last_poll_at=None,
        last_change_read_at=None,
        oldest_pending_at=None,
    )
    report = StatusReport(
        services=[],
        lag=[],
        entities=[invoices],
        results_last_minute=0,
        now=NOW,
        quotas=quota_statuses([plan], [invoices], {"1000001": "acme"}),
    )
    (quota,) = report.quotas
    # 27,000 invoices to go at 13,500 a window: two windows after the one at 12:20.
    assert quota.invoices_left == 27000
    assert quota.eta == NOW + timedelta(minutes=20, hours=1)
    lines = render_status(report).splitlines()
    start = lines.index("visma quota (UTC)")
    row = next(line for line in lines[start:] if "acme (1000001)" in line)
    for shown in (
        "13500/15000",
        "1500",
        "12:20:00",
        "spent, resumes 12:20:00",
        "27000",
        "13:20:00",
    ):
        assert shown in row

"""The console's Overview shows the latest reconcile of each connection: its outcome and each
entity's totals, or why it failed (rendered from the page's own template, no server)."""

from __future__ import annotations

from datetime import UTC, datetime

from console.pages.overview import Overview
from console.web import templates
from mlconnector.reconcile_status import LatestReconcile, ReconciledEntityTotals

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def rendered(reconciles: list[LatestReconcile]) -> str:
    overview = Overview(
        taken_at=NOW, rows=[], services=[], lag=[], results_per_second=0.0, failures=[],
        charts=[], reconciles=reconciles,
    )  # fmt: skip
    return templates.env.get_template("overview.html").render(
        overview=overview, charts=[], refresh=5, now=NOW, session=None, csrf_token=""
    )


def test_each_connections_latest_reconcile_is_shown_with_its_totals() -> None:
    drifted = LatestReconcile(
        connection="acme",
        tenant="1000001",
        finished_at=NOW,
        all_equal=False,
        error=None,
        entities=[
            ReconciledEntityTotals(
                entity="supplier", visma=10, basware=10, equal=9, missing=0, extra=0,
                different=1, duplicate=0, unmappable=0,
            )
        ],
    )  # fmt: skip
    failed = LatestReconcile(
        connection="globex", tenant="1000002", finished_at=NOW, all_equal=False,
        error="Basware GET /v1/vendors: 401", entities=[],
    )  # fmt: skip

    page = rendered([drifted, failed])

    table = page[page.index('id="reconcile"') :]
    assert "acme (1000001)" in table
    assert "not equal" in table
    assert "<td>supplier</td><td>10</td><td>10</td><td>9</td>" in table
    assert "failed: Basware GET /v1/vendors: 401" in table


def test_before_any_reconcile_the_overview_says_how_to_run_one() -> None:
    assert "Not reconciled yet" in rendered([])

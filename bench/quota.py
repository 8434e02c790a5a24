"""The quota run: a backfill bound by Visma's quota, its window compressed from an hour to
seconds (the sandbox's quota window, VISMA_QUOTA_WINDOW_SECONDS), with live supplier changes
made while the backfill waits for the next window (docs/visma-net.md §8.3).

What it measures, from the Visma sandbox's own request log: how much of each window's bulk
share the backfill used in the windows it waited for (the achieved rate against the
quota-bound rate), how many windows it took against how many its downloads need, 429s; and
from the results topic, the latency of the live changes.
"""

from __future__ import annotations

import asyncio
import math

from bench.latency import latency_figures, timed_changes
from bench.lifecycle import ledger_at_rest
from bench.pipeline import PipelineOptions
from bench.report import Figure, Record, Target
from bench.sizes import BenchSize, ScenarioContext
from bench.sync import measured_backfill
from bench.waiting import until
from visma_sandbox.requestlog import LoggedRequest, quota_windows

ATTACHMENT_ROUTE = "attachment.get"
MIN_BULK_SHARE_USED = 0.95
MAX_LIVE_P99_SECONDS = 60.0


def downloads(window: list[LoggedRequest]) -> int:
    return sum(c.route == ATTACHMENT_ROUTE and c.status == 200 for c in window)


async def quota_bound(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    run = size.quota
    options = PipelineOptions(
        **run.ledger.model_dump(),
        poll_interval=run.poll_interval,
        writers=context.writers,
        log_dir=context.log_dir,
    )
    async with ledger_at_rest(options) as (_, pipeline, watcher):
        company = pipeline.company.company_id
        # Live changes are found by the incremental polls (no notification makes one early).
        await pipeline.visma.set_webhooks(company, enabled=False)
        await pipeline.visma.set_quota_window(run.limit, run.window_seconds)
        for process in pipeline.services.values():
            process.env.update(
                {
                    "VISMA_QUOTA_RESERVE": str(run.reserve),
                    "VISMA_QUOTA_WINDOW_SECONDS": str(run.window_seconds),
                    "BASWARE_WRITER_FOLLOW_UP_INTERVAL_SECONDS": "1",
                }
            )
        before = await pipeline.visma.requests(company)
        since = before[-1].seq if before else 0
        reserve = math.ceil(run.limit * run.reserve)
        share = run.limit - reserve

        async def bulk_spent() -> bool:
            calls = await pipeline.visma.requests(company, since)
            return any((c.rate_limit_remaining or run.limit) <= reserve for c in calls)

        backfill = asyncio.create_task(
            measured_backfill(pipeline, watcher, run.ledger, timeout=run.timeout)
        )
        try:
            await until(pipeline, bulk_spent, timeout=run.timeout, what="the bulk share spent")
            live = await timed_changes(
                pipeline,
                watcher,
                first=0,
                count=run.live_changes,
                interval=run.live_change_interval,
            )
            sync = await backfill
        finally:
            backfill.cancel()
        calls = await pipeline.visma.requests(company, since)
    windows = quota_windows(calls)
    with_downloads = [w for w in windows if downloads(w)]
    waited = with_downloads[:-1]
    used = sum(downloads(w) for w in waited)
    needed = math.ceil(run.ledger.invoices / share)
    figures = [
        Figure(
            name=(
                f"quota: {run.limit} calls per {run.window_seconds:g} s window, "
                f"{reserve} kept for live work, {run.ledger.invoices} invoices"
            ),
            value=sync.seconds,
            unit="s",
            source="reader start to the last DeliveryResult",
        ),
        Figure(
            name="bulk share used in the windows the backfill waited for",
            value=100.0 * used / (share * len(waited)) if waited else 100.0,
            unit="%",
            source="attachment downloads per window (sandbox request log) / (limit - reserve)",
            target=Target(op=">=", value=100 * MIN_BULK_SHARE_USED),
        ),
        Figure(
            name=f"windows with downloads (at least {needed} at the bulk share)",
            value=len(with_downloads),
            unit="windows",
            source="sandbox request log, split where the calls left go up",
            target=Target(op="<=", value=needed + 1),
        ),
        Figure(
            name="429 answers from Visma",
            value=sum(c.status == 429 for c in calls),
            unit="answers",
            source="sandbox request log",
            target=Target(op="<=", value=0),
        ),
    ]
    record(
        "quota",
        [
            *figures,
            *latency_figures(
                f"live changes during it, polling every {run.poll_interval:g} s",
                live,
                p50=None,
                p99=MAX_LIVE_P99_SECONDS,
            ),
        ],
    )

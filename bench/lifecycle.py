"""One tenant's life on one pipeline: backfill, then changes with webhooks, then polling.

Sharing the pipeline keeps the run short (the sandboxes seed once, the services start once)
and measures latency and polling cost where they matter: on a tenant with the whole ledger
already in Basware. The phases, in order:

1. backfill: the ledger (put at rest first: last activity a day ago) synced with webhooks
   on and the scheduled poll as a safety net only;
   reconcile: `mlconnector reconcile` over the ledger just synced;
2. latency with webhooks: one supplier changed N times at a steady rate;
3. webhooks off, the reader restarted to poll every second; incremental cost: one poll
   cycle that finds 10 changes;
4. latency with polling only: the same supplier changed N times more.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bench.backfill import backfill_figures
from bench.incremental import incremental_figures
from bench.latency import SUPPLIER, latency_figures, timed_changes
from bench.ledger import put_ledger_at_rest
from bench.outcomes import OutcomeWatcher
from bench.pipeline import READER, Pipeline, PipelineOptions, running_pipeline
from bench.profiling import Profiler, profile_figures
from bench.reconcile import reconcile_figures
from bench.report import Record
from bench.sizes import BenchSize, ScenarioContext
from bench.sync import measured_backfill
from mlconnector.topics import message_key
from mlconnector_cli.stack import Stack, local_stack

PHASES = ("backfill", "reconcile", "incremental", "latency")


async def tenant_lifecycle(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    options = PipelineOptions(
        **size.backfill.model_dump(),
        poll_interval=size.safety_poll_interval,
        writers=context.writers,
        log_dir=context.log_dir,
    )
    async with ledger_at_rest(options) as (stack, pipeline, watcher):
        tenant = pipeline.company.company_id
        profiler = Profiler(context.log_dir / "profiles") if context.profile else None
        run = await measured_backfill(
            pipeline, watcher, size.backfill, timeout=size.backfill_timeout, profiler=profiler
        )
        record("backfill", backfill_figures(size.backfill, run))
        if run.profiles:
            record("profile", profile_figures(run.profiles))
        record(
            "reconcile",
            await reconcile_figures(
                pipeline, stack, size.backfill.records, context.log_dir / "reconcile-home"
            ),
        )

        changes = size.latency_changes
        interval = size.latency_change_interval
        webhooks = await timed_changes(pipeline, watcher, first=0, count=changes, interval=interval)

        await pipeline.visma.set_webhooks(tenant, enabled=False)
        poll_interval = size.latency_poll_interval
        await pipeline.restart(READER, {"VISMA_READER_POLL_INTERVAL_SECONDS": str(poll_interval)})
        record(
            "incremental",
            await incremental_figures(pipeline, size.backfill.records, size.incremental_changed),
        )

        polling = await timed_changes(
            pipeline, watcher, first=changes, count=changes, interval=interval
        )
        record(
            "latency",
            [
                *latency_figures("webhooks", webhooks, p50=0.5, p99=2.0),
                *latency_figures(
                    f"polling every {poll_interval:g} s",
                    polling,
                    p50=None,
                    p99=poll_interval + 1,
                ),
            ],
        )


@contextlib.asynccontextmanager
async def ledger_at_rest(
    options: PipelineOptions,
) -> AsyncIterator[tuple[Stack, Pipeline, OutcomeWatcher]]:
    """A fresh stack and pipeline seeded with the options' ledger, put at rest, and a watcher
    of its outcomes (keyed for the supplier the latency phases change)."""
    async with (
        local_stack(purpose="bench") as stack,
        running_pipeline(stack, options) as pipeline,
    ):
        tenant = pipeline.company.company_id
        async with OutcomeWatcher(
            stack.bootstrap_servers, changes_key=message_key(tenant, SUPPLIER)
        ) as watcher:
            await put_ledger_at_rest(pipeline)
            yield stack, pipeline, watcher

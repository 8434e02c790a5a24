"""Chaos: the tenant's backfill with every service killed (SIGKILL) in turn, a few rounds,
against the same backfill on a fresh pipeline without kills.

Nothing in the benchmark's pipeline restarts a service by itself, so this run is the
supervisor: from the moment the clock starts (the reader's launch), it kills one service
process, starts it again at once (as systemd or a container runtime would) and waits for it
to answer before it kills the next one, every `chaos_kill_interval`, until every service was
killed `chaos_rounds` times or the backfill ended. The figure is the time to complete with
kills against without; the aim is under 1.5x. The ledger is `chaos_ledger`: at the small
size, larger than the tenant's, so that the backfill lasts long enough for every service to
be killed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from bench.lifecycle import ledger_at_rest
from bench.pipeline import Pipeline, PipelineOptions
from bench.report import Figure, Record, Target
from bench.sizes import BenchSize, ScenarioContext
from bench.sync import SyncRun, measured_backfill

MAX_SLOWDOWN = 1.5


class KillSchedule:
    """Kills each service in turn and starts it again at once, `rounds` times over."""

    def __init__(self, pipeline: Pipeline, interval: float, rounds: int) -> None:
        self._pipeline = pipeline
        self._interval = interval
        self._rounds = rounds
        self.kills = 0

    async def run(self) -> None:
        pipeline = self._pipeline
        for _ in range(self._rounds):
            for name in list(pipeline.services):
                await asyncio.sleep(self._interval)
                process = pipeline.services[name]
                if process.pid is None or process.exited is not None:
                    continue
                pipeline.restarting.add(name)
                try:
                    os.kill(process.pid, signal.SIGKILL)
                    await process.stop()  # reaps it
                    self.kills += 1
                    await pipeline.start([name])
                finally:
                    pipeline.restarting.discard(name)


async def timed_backfill(
    size: BenchSize, context: ScenarioContext, *, kill: bool
) -> tuple[SyncRun, int]:
    """One backfill of the tenant's ledger on a fresh stack; with `kill`, under the kills.
    Returns it and how many kills it took."""
    options = PipelineOptions(
        **size.chaos_ledger.model_dump(),
        poll_interval=size.safety_poll_interval,
        writers=context.writers,
        log_dir=context.log_dir / ("chaos" if kill else "calm"),
    )
    options.log_dir.mkdir(parents=True, exist_ok=True)
    async with ledger_at_rest(options) as (_, pipeline, watcher):
        schedule = KillSchedule(pipeline, size.chaos_kill_interval, size.chaos_rounds)
        killing: list[asyncio.Task[None]] = []

        def start_killing() -> None:
            if kill:
                killing.append(asyncio.create_task(schedule.run()))

        try:
            run = await measured_backfill(
                pipeline,
                watcher,
                size.chaos_ledger,
                timeout=size.backfill_timeout * 3,
                clock_started=start_killing,
            )
        finally:
            for task in killing:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return run, schedule.kills


async def chaos(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    calm, _ = await timed_backfill(size, context, kill=False)
    chaotic, kills = await timed_backfill(size, context, kill=True)
    record("chaos", chaos_figures(calm, chaotic, kills))


def chaos_figures(calm: SyncRun, chaotic: SyncRun, kills: int) -> list[Figure]:
    return [
        Figure(
            name=f"backfill of {calm.records:,} records without kills",
            value=calm.seconds,
            unit="s",
            source="reader start to the last DeliveryResult on basware.results",
        ),
        Figure(
            name=f"the same with {kills} kill -9 of the services in turn",
            value=chaotic.seconds,
            unit="s",
            source="reader start to the last DeliveryResult; each service started again at once",
        ),
        Figure(
            name="time to complete under kills, against without",
            value=chaotic.seconds / calm.seconds if calm.seconds else None,
            unit="x",
            source="the two wall times above",
            target=Target(op="<", value=MAX_SLOWDOWN),
        ),
    ]

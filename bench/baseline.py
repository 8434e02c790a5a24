"""Baseline: the naive one-call-at-a-time sync against the pipeline, both with the same
simulated API latency on both sandboxes, on the same seeded ledger.

One pair of sandboxes serves both: the naive sync runs first, then the Basware sandbox is
reset to empty and the pipeline backfills the same (only read) Visma ledger.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from bench.naive_sync import naive_sync
from bench.outcomes import OutcomeWatcher
from bench.pipeline import Pipeline, PipelineOptions, running_pipeline
from bench.report import Figure, Record, Target
from bench.sizes import BenchSize, Dataset, ScenarioContext
from bench.sync import measured_backfill
from mlconnector.connections import EnvConnectionSource
from mlconnector.contracts import Outcome
from mlconnector_cli.run import demo_connection_env
from mlconnector_cli.stack import local_stack

MIN_SPEED_UP = 50.0


class NaiveRun(BaseModel):
    records: int
    seconds: float
    visma_requests: int
    basware_requests: int
    delivered: int

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds


async def naive_run(pipeline: Pipeline, dataset: Dataset) -> NaiveRun:
    connection = (await EnvConnectionSource(demo_connection_env(pipeline.urls)).list())[0]
    visma_before = await pipeline.visma.api_requests()
    basware_before = await pipeline.basware.api_requests()
    started = time.perf_counter()
    outcomes = await naive_sync(connection)
    seconds = time.perf_counter() - started
    visma_requests = await pipeline.visma.api_requests() - visma_before
    basware_requests = await pipeline.basware.api_requests() - basware_before
    if sum(outcomes.values()) != dataset.records:
        raise RuntimeError(f"the naive sync saw {sum(outcomes.values())} of {dataset.records}")
    return NaiveRun(
        records=dataset.records,
        seconds=seconds,
        visma_requests=visma_requests,
        basware_requests=basware_requests,
        delivered=outcomes[Outcome.DELIVERED],
    )


async def baseline(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    data = size.baseline
    latency = context.latency_ms
    options = PipelineOptions(
        **data.model_dump(),
        poll_interval=size.safety_poll_interval,
        latency_ms=latency,
        writers=context.writers,
        log_dir=context.log_dir,
    )
    async with (
        local_stack(purpose="bench") as stack,
        running_pipeline(stack, options) as pipeline,
        OutcomeWatcher(stack.bootstrap_servers) as watcher,
    ):
        naive = await naive_run(pipeline, data)
        # The pipeline starts from an empty Basware, as the naive sync did; Visma only read.
        await pipeline.basware.reset()
        await pipeline.basware.set_latency(latency)
        piped = await measured_backfill(pipeline, watcher, data, timeout=size.backfill_timeout)
    label = f"{data.records:,} records, {latency:g} ms per call"
    counters = "sandbox request counters"
    figures = [
        Figure(
            name=f"naive sync: throughput ({label})",
            value=naive.records_per_second,
            unit="records/s",
            source="records / wall time of the script",
        ),
        Figure(
            name="naive sync: HTTP requests Visma / Basware",
            value=naive.visma_requests + naive.basware_requests,
            unit="requests",
            source=f"{counters} ({naive.visma_requests} / {naive.basware_requests})",
        ),
        Figure(
            name="naive sync: records delivered",
            value=naive.delivered,
            unit="records",
            source="Basware's verdict per call",
        ),
        Figure(
            name="pipeline: throughput, same latency",
            value=piped.records_per_second,
            unit="records/s",
            source="records / wall time (reader start to last result)",
        ),
        Figure(
            name="pipeline: HTTP requests Visma / Basware",
            value=piped.visma_requests + piped.basware_requests,
            unit="requests",
            source=f"{counters} ({piped.visma_requests} / {piped.basware_requests})",
        ),
        Figure(
            name="pipeline: records delivered",
            value=piped.outcomes[Outcome.DELIVERED],
            unit="records",
            source="latest DeliveryResult per record",
        ),
        Figure(
            name="speed-up, pipeline / naive",
            value=piped.records_per_second / naive.records_per_second,
            unit="x",
            source="ratio of the two throughputs",
            target=Target(op=">=", value=MIN_SPEED_UP),
        ),
    ]
    record("baseline", figures)

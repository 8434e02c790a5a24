"""One backfill through the whole pipeline, measured (the backfill and baseline scenarios).

The writer, gateway and audit store start first; the clock starts when the reader process
is launched (its start-up counts, it is part of a backfill) and stops at the newest result
event once every seeded record has a final outcome on basware.results. Request counts are
the sandboxes' counter deltas over that span; memory and CPU are read from the kernel while
the services still run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel

from bench.outcomes import OutcomeWatcher
from bench.pipeline import READER, Pipeline
from bench.procstats import ProcessUsage
from bench.profiling import ProcessProfile, Profiler
from bench.sizes import Dataset
from bench.waiting import until
from mlconnector.contracts import REFERENCE_ENTITIES, Outcome
from mlconnector_cli.run import RunOptions, expected_totals

# Routes of the reference data (Visma sandbox route names) and of master data in Basware.
VISMA_REFERENCE_ROUTES = ("creditterm.", "vatcategory.", "account.", "dimension.")
BASWARE_MASTER_ROUTES = (
    "POST /v1/paymentTerms ",
    "POST /v1/taxCodes ",
    "POST /v1/accounts ",
    "POST /v1/costCenters ",
    "POST /v2/projects ",
    "POST /v1/lists/",
)


def _counted(after: dict[str, int], before: dict[str, int], matches: Callable[[str], bool]) -> int:
    """Requests counted between two readings of a sandbox's counters, on matching keys."""
    return sum(n - before.get(key, 0) for key, n in after.items() if matches(key))


class SyncRun(BaseModel):
    records: int
    seconds: float
    visma_requests: int
    basware_requests: int
    # Of those, the calls for reference data (Visma) and master data (Basware).
    visma_reference_requests: int = 0
    basware_master_requests: int = 0
    reference_records: int = 0
    outcomes: dict[Outcome, int]
    usage: dict[str, ProcessUsage]
    # CPU seconds over the backfill of what is not the connector (Pipeline.infrastructure_cpu).
    infrastructure_cpu: dict[str, float] = {}
    profiles: list[ProcessProfile] = []

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds


async def measured_backfill(
    pipeline: Pipeline,
    watcher: OutcomeWatcher,
    dataset: Dataset,
    *,
    timeout: float,
    profiler: Profiler | None = None,
    clock_started: Callable[[], None] | None = None,
) -> SyncRun:
    """Starts the services (the reader last) and waits until every seeded record settled,
    profiling every process meanwhile when given a profiler; `clock_started` is told when
    the clock starts (the chaos run starts its kills then)."""
    await pipeline.start([name for name in pipeline.services if name != READER])
    visma_before = await pipeline.visma.api_requests()
    basware_before = await pipeline.basware.api_requests()
    visma_counters = await pipeline.visma.counters()
    basware_counters = await pipeline.basware.counters()
    infrastructure_before = pipeline.infrastructure_cpu()
    started = datetime.now(UTC)
    await pipeline.start([READER])
    if clock_started is not None:
        clock_started()
    if profiler is not None:
        await profiler.start(pipeline.pids())

    async def settled() -> bool:
        return watcher.settled(expected_totals(RunOptions(**dataset.model_dump())))

    await until(pipeline, settled, timeout=timeout, what="every record's final outcome")
    profiles = await profiler.stop() if profiler is not None else []
    usage = pipeline.usage()
    infrastructure = {
        name: seconds - infrastructure_before.get(name, 0.0)
        for name, seconds in pipeline.infrastructure_cpu().items()
    }
    visma_requests = await pipeline.visma.api_requests() - visma_before
    basware_requests = await pipeline.basware.api_requests() - basware_before
    visma_reference = _counted(
        await pipeline.visma.counters(),
        visma_counters,
        lambda key: key.split(" ")[-1].startswith(VISMA_REFERENCE_ROUTES),
    )
    basware_master = _counted(
        await pipeline.basware.counters(),
        basware_counters,
        lambda key: key.startswith(BASWARE_MASTER_ROUTES),
    )
    finished = max(result.occurred_at for result in watcher.latest.values())
    outcomes = {
        outcome: sum(counts[outcome] for counts in watcher.outcomes().values())
        for outcome in Outcome
    }
    return SyncRun(
        records=dataset.records,
        seconds=(finished - started).total_seconds(),
        visma_requests=visma_requests,
        basware_requests=basware_requests,
        visma_reference_requests=visma_reference,
        basware_master_requests=basware_master,
        reference_records=sum(
            sum(counts.values())
            for entity, counts in watcher.outcomes().items()
            if entity in REFERENCE_ENTITIES
        ),
        outcomes=outcomes,
        usage=usage,
        infrastructure_cpu=infrastructure,
        profiles=profiles,
    )

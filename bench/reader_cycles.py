"""visma-reader's poll cycles, seen through its Prometheus metrics."""

from __future__ import annotations

from bench.metrics import MetricsSnapshot
from bench.pipeline import READER, Pipeline
from bench.waiting import until

POLLS = "mlc_reader_poll_duration_seconds_count"
POLL_TIME = "mlc_reader_poll_duration_seconds_sum"
READ = "mlc_reader_records_read_total"
PUBLISHED = "mlc_reader_events_published_total"


async def cycle_end(
    pipeline: Pipeline, *, after_polls: float, min_read: float, timeout: float
) -> MetricsSnapshot:
    """The reader's metrics at the end of a whole poll cycle that ends after `after_polls`
    polls, once it read at least `min_read` records in all.

    A cycle polls every stream once, so the number of label sets of the poll histogram is
    the number of polls per cycle, and cycles end where the poll count is a multiple of it.
    """
    latest: list[MetricsSnapshot] = []

    async def cycle_ended() -> bool:
        latest[:] = [metrics := await pipeline.metrics(READER)]
        per_cycle = metrics.series(POLLS)
        polls = metrics.total(POLLS)
        return (
            per_cycle > 0
            and polls >= after_polls + per_cycle
            and polls % per_cycle == 0
            and metrics.total(READ) >= min_read
        )

    await until(pipeline, cycle_ended, timeout=timeout, what="the end of a reader poll cycle")
    return latest[0]

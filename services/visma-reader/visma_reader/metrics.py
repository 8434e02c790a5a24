"""visma-reader's Prometheus metrics, and the progress log of backfills and full scans.

Counters move with every page, so a backfill's rate shows while it runs; the backfill gauges
say how far the current one got (read of totalCount), per tenant and stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from visma_reader.poller import PollReport, Stream

log = logging.getLogger("visma_reader")

LABELS = ["tenant", "entity"]
RECORDS_READ = Counter("mlc_reader_records_read", "Visma records read", LABELS)
EVENTS_PUBLISHED = Counter("mlc_reader_events_published", "Change events published", LABELS)
POLL_SECONDS = Histogram(
    "mlc_reader_poll_duration_seconds",
    "Duration of one poll of one stream",
    LABELS,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
POLL_FAILURES = Counter("mlc_reader_poll_failures", "Polls that ended in an error", LABELS)
RESCANS = Counter(
    "mlc_reader_rescans", "Windows read again because rows left them while paging", LABELS
)
LAST_SUCCESS = Gauge(
    "mlc_reader_last_success_timestamp_seconds",
    "Unix time when the last complete poll ended",
    LABELS,
)
BACKFILL_READ = Gauge(
    "mlc_reader_backfill_read_records", "Records the current or last backfill has read", LABELS
)
BACKFILL_TOTAL = Gauge(
    "mlc_reader_backfill_total_records",
    "Records the current or last backfill has to read (Visma's totalCount)",
    LABELS,
)


class ReaderMetrics:
    """The reader's `PollObserver`: metrics for every page, a log line now and then."""

    def __init__(
        self,
        progress_log_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every = progress_log_seconds
        self._clock = clock
        self._logged: dict[tuple[str, Stream], float] = {}

    def page_read(self, report: PollReport, rows: int, published: int) -> None:
        labels = (report.tenant, report.stream.value)
        RECORDS_READ.labels(*labels).inc(rows)
        EVENTS_PUBLISHED.labels(*labels).inc(published)
        if not report.full_scan:
            return
        if report.backfill:
            BACKFILL_READ.labels(*labels).set(report.scanned)
            if report.total is not None:
                BACKFILL_TOTAL.labels(*labels).set(report.total)
        key = (report.tenant, report.stream)
        now = self._clock()
        last = self._logged.get(key)
        if last is None or now - last >= self._every:
            self._logged[key] = now
            log_progress(report)

    def poll_ended(self, report: PollReport) -> None:
        labels = (report.tenant, report.stream.value)
        POLL_SECONDS.labels(*labels).observe(report.seconds)
        RESCANS.labels(*labels).inc(report.rescans)
        if report.complete:
            LAST_SUCCESS.labels(*labels).set(time.time())
        if report.full_scan:
            self._logged.pop((report.tenant, report.stream), None)
            log.info(
                "%s %s/%s %s: %d read, %d published in %.1f s (%.0f records/s)",
                _kind(report),
                report.tenant,
                report.stream.value,
                "done" if report.complete else "incomplete",
                report.read,
                report.published,
                report.seconds,
                report.read / report.seconds if report.seconds else 0.0,
            )
        elif report.published:
            log.info(
                "polled %s/%s: %d read, %d published in %.2f s",
                report.tenant,
                report.stream.value,
                report.read,
                report.published,
                report.seconds,
            )

    def poll_failed(self, tenant: str, stream: Stream) -> None:
        POLL_FAILURES.labels(tenant, stream.value).inc()


def _kind(report: PollReport) -> str:
    return "backfill" if report.backfill else "full scan"


def log_progress(report: PollReport) -> None:
    if report.total:
        log.info(
            "%s %s/%s: %d of %d read (%.0f%%), %d published",
            _kind(report),
            report.tenant,
            report.stream.value,
            report.scanned,
            report.total,
            100.0 * report.scanned / report.total,
            report.published,
        )
    else:
        log.info(
            "%s %s/%s: %d read, %d published",
            _kind(report),
            report.tenant,
            report.stream.value,
            report.scanned,
            report.published,
        )

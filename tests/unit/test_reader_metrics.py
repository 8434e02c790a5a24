"""The reader's metrics and its progress log for long backfills."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from visma_reader.metrics import ReaderMetrics
from visma_reader.poller import PollReport, Stream


def sample(name: str, tenant: str, entity: str = "supplier") -> float | None:
    return REGISTRY.get_sample_value(name, {"tenant": tenant, "entity": entity})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_backfill_reports_progress_per_page_and_logs_it_now_and_then(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    metrics = ReaderMetrics(progress_log_seconds=10, clock=clock)
    report = PollReport(tenant="m-backfill", stream=Stream.SUPPLIER, backfill=True, full_scan=True)
    caplog.set_level(logging.INFO, logger="visma_reader")
    for page in range(1, 6):
        report.scanned = report.read = page * 100
        report.published = page * 90
        report.total = 500
        metrics.page_read(report, 100, 90)
        clock.now += 4  # a log line at 0 s and at 12 s, not for every page
    progress = [r.getMessage() for r in caplog.records if "of 500 read" in r.getMessage()]
    assert progress == [
        "backfill m-backfill/supplier: 100 of 500 read (20%), 90 published",
        "backfill m-backfill/supplier: 400 of 500 read (80%), 360 published",
    ]
    assert sample("mlc_reader_records_read_total", "m-backfill") == 500
    assert sample("mlc_reader_events_published_total", "m-backfill") == 450
    assert sample("mlc_reader_backfill_read_records", "m-backfill") == 500
    assert sample("mlc_reader_backfill_total_records", "m-backfill") == 500

    report.complete, report.seconds = True, 2.0
    metrics.poll_ended(report)
    assert "backfill m-backfill/supplier done: 500 read, 450 published" in caplog.text
    assert (sample("mlc_reader_last_success_timestamp_seconds", "m-backfill") or 0) > 0
    assert sample("mlc_reader_poll_duration_seconds_count", "m-backfill") == 1


def test_an_incomplete_poll_is_not_a_success() -> None:
    metrics = ReaderMetrics(progress_log_seconds=10)
    report = PollReport(tenant="m-incomplete", stream=Stream.PURCHASE_ORDER, backfill=False)
    report.rescans = 2
    metrics.poll_ended(report)
    metrics.poll_failed("m-incomplete", Stream.PURCHASE_ORDER)
    assert (
        sample("mlc_reader_last_success_timestamp_seconds", "m-incomplete", "purchase_order")
        is None
    )
    assert sample("mlc_reader_rescans_total", "m-incomplete", "purchase_order") == 2
    assert sample("mlc_reader_poll_failures_total", "m-incomplete", "purchase_order") == 1

"""The benchmark's pure parts: percentiles, latencies, targets, the table, metrics parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.latency import change_latencies, version_of, versioned_name
from bench.metrics import MetricsSnapshot
from bench.report import (
    BenchReport,
    Figure,
    ScenarioResult,
    Target,
    error_summary,
    format_value,
    render_table,
)
from bench.sizes import Dataset
from bench.stats import Percentiles, percentile


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)


def test_percentile_of_one_sample_is_that_sample() -> None:
    assert percentile([0.7], 99) == 0.7


@pytest.mark.parametrize(("values", "q"), [([], 50.0), ([1.0], 101.0), ([1.0], -1.0)])
def test_percentile_refuses_what_has_no_answer(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"samples|outside"):
        percentile(values, q)


def test_percentiles_of_a_hundred_samples() -> None:
    summary = Percentiles.of([float(n) for n in range(1, 101)])
    assert (summary.samples, summary.p50, summary.max) == (100, 50.5, 100.0)
    assert summary.p99 == pytest.approx(99.01)


@pytest.mark.parametrize(
    ("target", "measured", "met"),
    [
        (Target(op="<", value=60), 59.9, True),
        (Target(op="<", value=60), 60.0, False),
        (Target(op="<=", value=2), 2, True),
        (Target(op=">=", value=20), 19.5, False),
    ],
)
def test_targets(target: Target, measured: float, met: bool) -> None:
    assert Figure(name="f", value=measured, source="s", target=target).met is met


def test_a_figure_without_target_or_value_has_no_verdict() -> None:
    assert Figure(name="f", value=1.0, source="s").met is None
    assert Figure(name="f", value=None, source="s", target=Target(op="<", value=1)).met is None


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (110000, "records", "110,000 records"),
        (1834.56, "records/s", "1,835 records/s"),
        (42.25, "s", "42.2 s"),
        (3.14159, "s", "3.14 s"),
        (0.01234, "s", "0.0123 s"),
        (0.0, "calls", "0 calls"),
        (None, "s", "n/a"),
        (25.0, "x", "25 x"),
    ],
)
def test_values_are_formatted_for_people(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_table_lists_every_figure_and_each_failure() -> None:
    table = render_table(
        [
            ScenarioResult(
                scenario="incremental",
                ok=True,
                seconds=3.0,
                figures=[
                    Figure(
                        name="Visma calls",
                        value=4,
                        unit="calls",
                        source="counters",
                        target=Target(op="<=", value=2),
                    ),
                    Figure(name="cycle time", value=0.168, unit="s", source="metrics"),
                ],
            ),
            ScenarioResult(scenario="backfill", ok=False, seconds=1.0, error="TimeoutError"),
        ]
    )
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # columns line up
    assert set(lines[1]) == {"|", "-"}
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]
    assert cells[0] == ["scenario", "figure", "value", "target", "met"]
    assert cells[2:] == [
        ["incremental", "Visma calls", "4 calls", "<= 2 calls", "NO"],
        ["incremental", "cycle time", "0.168 s", "", ""],
        ["backfill", "FAILED", "TimeoutError", "", ""],
    ]


def test_report_is_written_as_json_under_the_results_folder(tmp_path: Path) -> None:
    report = BenchReport(
        size="small",
        started_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        seconds=42.0,
        cpus=2,
        simulated_latency_ms=20.0,
        scenarios=[ScenarioResult(scenario="x", ok=True, seconds=1.0)],
    )
    path = report.write(tmp_path / "bench-results")
    assert path.name == "bench-small-20261125T093000.json"
    assert BenchReport.model_validate_json(path.read_text()) == report
    assert report.ok


def test_metrics_are_summed_over_label_sets() -> None:
    snapshot = MetricsSnapshot(
        "# TYPE polls histogram\n"
        'polls_count{entity="supplier"} 2.0\n'
        'polls_count{entity="purchase_order"} 2.0\n'
        'polls_sum{entity="supplier"} 0.5\n'
    )
    assert snapshot.total("polls_count") == 4.0
    assert snapshot.series("polls_count") == 2
    assert snapshot.total("absent") == 0.0


def test_a_ledger_of_a_given_size_keeps_the_backfill_proportions() -> None:
    ledger = Dataset.of_total(110_000)
    assert (ledger.suppliers, ledger.purchase_orders, ledger.invoices) == (10_000, 50_000, 50_000)
    assert Dataset.of_total(11_000).records == 11_000
    assert Dataset.of_total(5).records == 11


T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_each_change_waits_for_its_own_or_a_later_accepted_version() -> None:
    changed_at = [at(0.0), at(0.5), at(1.0)]
    # Version 0 accepted on its own; version 1 was overtaken by version 2 before a poll.
    accepted = [(0, at(0.3)), (2, at(1.8))]
    assert change_latencies(changed_at, accepted) == pytest.approx([0.3, 1.3, 0.8])


def test_a_change_that_never_reached_basware_is_an_error() -> None:
    with pytest.raises(ValueError, match="change 1 never reached Basware"):
        change_latencies([at(0), at(1)], [(0, at(0.2))])


def test_versions_are_read_back_from_supplier_names() -> None:
    assert version_of(versioned_name(42)) == 42
    assert version_of("Fjordvik Handel AS") is None


def test_table_errors_keep_their_first_and_last_line() -> None:
    error = RuntimeError("writer exited with code 1:\nTraceback ...\nTypeError: bad")
    assert error_summary(error) == "RuntimeError: writer exited with code 1: ... TypeError: bad"
    assert error_summary(TimeoutError()) == "TimeoutError"


def test_figures_before_stand_beside_the_new_ones_where_a_figure_of_that_name_was() -> None:
    def backfill(figures: list[Figure]) -> ScenarioResult:
        return ScenarioResult(scenario="backfill", ok=True, seconds=1.0, figures=figures)

    cpu = Figure(name="CPU per record, all services", value=0.9, unit="ms", source="s")
    rss = Figure(name="basware-writer peak RSS", value=140.0, unit="MB", source="s")
    before = BenchReport(
        size="full",
        started_at=T0,
        seconds=1.0,
        cpus=2,
        simulated_latency_ms=20.0,
        scenarios=[backfill([cpu.model_copy(update={"value": 5.7})])],
    )
    lines = render_table([backfill([cpu, rss])], before).splitlines()
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]
    assert cells[0] == ["scenario", "figure", "value", "before", "target", "met"]
    assert cells[2][2:4] == ["0.9 ms", "5.70 ms"]
    assert cells[3][2:4] == ["140 MB", ""]

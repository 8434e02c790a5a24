"""The reconciler's Prometheus metrics, served on /metrics: the latest run per connection."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from reconciler.compare import Outcome
from reconciler.reading import ConnectionReport

RECORDS = Gauge(
    "mlc_reconcile_records",
    "Records of the latest reconcile, by outcome",
    ["connection", "entity", "outcome"],
)
EQUAL = Gauge(
    "mlc_reconcile_all_equal",
    "1 when the latest reconcile found Visma and Basware equal, else 0",
    ["connection"],
)
LAST_RUN = Gauge(
    "mlc_reconcile_last_run_timestamp_seconds",
    "When the latest reconcile of the connection finished (Unix time)",
    ["connection"],
)
DURATION = Gauge(
    "mlc_reconcile_duration_seconds", "Wall time of the latest reconcile", ["connection"]
)
CALLS = Gauge(
    "mlc_reconcile_calls",
    "List calls of the latest reconcile, by system",
    ["connection", "system"],
)
RUNS = Counter("mlc_reconcile_runs", "Reconciles run, by result", ["connection", "result"])


def observe(report: ConnectionReport) -> None:
    name = report.connection
    for entity in report.entities:
        totals = entity.totals
        for outcome in Outcome:
            RECORDS.labels(name, totals.entity, outcome.value).set(getattr(totals, outcome.value))
    EQUAL.labels(name).set(1 if report.all_equal else 0)
    LAST_RUN.labels(name).set(report.finished_at.timestamp())
    DURATION.labels(name).set((report.finished_at - report.started_at).total_seconds())
    CALLS.labels(name, "visma").set(report.calls.visma)
    CALLS.labels(name, "basware").set(report.calls.basware)
    RUNS.labels(name, "equal" if report.all_equal else "different").inc()


def observe_failure(connection: str) -> None:
    RUNS.labels(connection, "failed").inc()

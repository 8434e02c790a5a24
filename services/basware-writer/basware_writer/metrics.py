"""The writer's Prometheus metrics, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESULTS = Counter("mlc_writer_results", "Result events published", ["tenant", "entity", "outcome"])
MALFORMED = Counter(
    "mlc_writer_malformed", "Messages on the changes topic that are no change event"
)
BATCH_SECONDS = Histogram("mlc_writer_batch_seconds", "Time to deliver one consumed batch")
PARKED = Gauge(
    "mlc_writer_parked_changes", "Change events waiting behind a prerequisite", ["tenant"]
)
QUOTA_WAITS = Gauge(
    "mlc_writer_quota_parked_uploads",
    "Invoice uploads parked until Visma's quota window resets",
    ["tenant"],
)
PARKED_KEYS = Gauge("mlc_writer_parked_keys", "Keys (tenant:supplier) with parked changes")
PENDING = Gauge(
    "mlc_writer_pending_records",
    "Records Basware is still processing, followed from PostgreSQL",
    ["tenant"],
)
IN_FLIGHT = Gauge(
    "mlc_writer_requests_in_flight", "Basware HTTP calls open now in this process", ["tenant"]
)
RETRIES = Counter("mlc_writer_retries", "Basware calls retried, by why", ["tenant", "reason"])
BUDGET_WAITS = Histogram(
    "mlc_writer_budget_wait_seconds",
    "Time a Basware call waited for the shared request budget (waits only)",
    ["tenant"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe_budget_wait(tenant: str, seconds: float) -> None:
    BUDGET_WAITS.labels(tenant).observe(seconds)


RATE_LIMITED = Counter(
    "mlc_writer_rate_limited", "429 answers from Basware (each slows the budget)", ["tenant"]
)

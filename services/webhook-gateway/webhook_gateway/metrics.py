"""The gateway's Prometheus counters, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS_ANSWERED = Counter(
    "mlc_gateway_webhooks",
    "Webhooks answered 2xx, by source and outcome",
    ["source", "outcome"],
)
WEBHOOKS_REFUSED = Counter(
    "mlc_gateway_refusals",
    "Webhooks refused and not republished, by source and reason",
    ["source", "reason"],
)

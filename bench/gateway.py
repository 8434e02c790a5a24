"""Gateway: verified webhooks per second through webhook-gateway (`gateway_rate.py`)."""

from __future__ import annotations

from bench.gateway_rate import measure
from bench.report import Figure, Record
from bench.sizes import BenchSize, ScenarioContext

CONNECTIONS = 16


async def gateway_rate(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    rate = await measure(size.gateway_webhooks, CONNECTIONS, log_dir=context.log_dir)
    if rate.accepted != rate.webhooks or rate.republished != rate.webhooks:
        raise RuntimeError(
            f"{rate.accepted} of {rate.webhooks} webhooks accepted, {rate.republished} republished"
        )
    figure = Figure(
        name=f"verified webhooks ({rate.webhooks:,} over {CONNECTIONS} connections)",
        value=rate.per_second,
        unit="webhooks/s",
        source="200 answers (verified, claimed, acknowledged by Kafka) / send time",
    )
    record("gateway", [figure])

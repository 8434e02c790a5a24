"""Backfill: the seeded ledger through the whole pipeline until every record has its final
Basware outcome, without simulated latency (measured by `sync.measured_backfill`)."""

from __future__ import annotations

from bench.report import Figure, Target
from bench.sizes import Dataset
from bench.sync import SyncRun
from mlconnector.contracts import Outcome

MAX_RSS_MB = 200.0
# The aims of issue 14: the writer's memory, and the CPU of the four services together.
MAX_WRITER_RSS_MB = 150.0
MAX_CPU_MS_PER_RECORD = 1.0
WRITER = "basware-writer"
# Calls per hour and company a production Visma client gets (docs/visma-net.md §8.1):
# beyond it, a backfill waits for the next hour whatever the pipeline's speed.
VISMA_HOURLY_QUOTA = 15_000


def backfill_figures(data: Dataset, run: SyncRun) -> list[Figure]:
    figures = [
        Figure(
            name=(
                f"wall time, {data.suppliers:,} suppliers / {data.purchase_orders:,} POs / "
                f"{data.invoices:,} invoices"
            ),
            value=run.seconds,
            unit="s",
            source="reader start to the last DeliveryResult on basware.results",
            target=Target(op="<", value=60),
        ),
        Figure(
            name="throughput",
            value=run.records_per_second,
            unit="records/s",
            source="records / wall time",
        ),
        Figure(
            name="HTTP requests to Visma (vs one hour's quota)",
            value=run.visma_requests,
            unit="requests",
            source="Visma sandbox request counters",
            target=Target(op="<=", value=VISMA_HOURLY_QUOTA),
        ),
        Figure(
            name="HTTP requests to Basware",
            value=run.basware_requests,
            unit="requests",
            source="Basware sandbox request counters",
        ),
        Figure(
            name=f"of which reference data: Visma reads ({run.reference_records} records)",
            value=run.visma_reference_requests,
            unit="requests",
            source="Visma sandbox counters of creditTerm, vatCategory, account, dimension",
        ),
        Figure(
            name="of which master data: Basware POSTs",
            value=run.basware_master_requests,
            unit="requests",
            source="Basware sandbox counters of paymentTerms, taxCodes, accounts, costCenters, "
            "projects, lists",
        ),
    ]
    figures += [
        Figure(
            name=f"records {outcome.value}",
            value=run.outcomes[outcome],
            unit="records",
            source="latest DeliveryResult per record",
        )
        for outcome in (Outcome.DELIVERED, Outcome.REJECTED, Outcome.FAILED)
    ]
    for service, usage in sorted(run.usage.items()):
        figures += [
            Figure(
                name=f"{service} peak RSS",
                value=usage.peak_rss_mb,
                unit="MB",
                source="/proc/<pid>/status VmHWM",
                target=Target(
                    op="<=" if service.startswith(WRITER) else "<",
                    value=MAX_WRITER_RSS_MB if service.startswith(WRITER) else MAX_RSS_MB,
                ),
            ),
            Figure(
                name=f"{service} CPU time",
                value=usage.cpu_seconds,
                unit="s",
                source="user + system time of the process",
            ),
            Figure(
                name=f"{service} CPU per 1,000 records",
                value=usage.cpu_seconds / data.records * 1000,
                unit="s",
                source="CPU time / records",
            ),
        ]
    services_cpu = sum(usage.cpu_seconds for usage in run.usage.values())
    figures.append(
        Figure(
            name="CPU per record, all services",
            value=services_cpu / data.records * 1000,
            unit="ms",
            source="the services' CPU time / records (sandboxes not counted)",
            target=Target(op="<=", value=MAX_CPU_MS_PER_RECORD),
        )
    )
    figures += [
        Figure(
            name=f"{name} CPU per 1,000 records (not the connector)",
            value=seconds / data.records * 1000,
            unit="s",
            source="CPU time over the backfill / records",
        )
        for name, seconds in sorted(run.infrastructure_cpu.items())
    ]
    measured = services_cpu + sum(run.infrastructure_cpu.values())
    if run.infrastructure_cpu and measured > 0:
        figures.append(
            Figure(
                name="the connector's share of the measured CPU",
                value=100.0 * services_cpu / measured,
                unit="%",
                source="services / (services + sandboxes + broker + benchmark process); "
                "PostgreSQL, shared with other runs, not measured",
            )
        )
    return figures

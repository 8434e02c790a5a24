"""How big each run is: `full` is issue 9's bar, `small` a CI smoke test under a minute."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class Dataset(BaseModel):
    """Records seeded into the Visma sandbox's company (purchase orders come with lines and
    receipts)."""

    suppliers: int
    purchase_orders: int
    invoices: int

    @property
    def records(self) -> int:
        return self.suppliers + self.purchase_orders + self.invoices

    @classmethod
    def of_total(cls, total: int) -> Dataset:
        """A ledger of about `total` records in the full backfill's proportions: one
        supplier to five purchase orders and five invoices."""
        suppliers = max(1, round(total / 11))
        return cls(suppliers=suppliers, purchase_orders=5 * suppliers, invoices=5 * suppliers)


class QuotaRun(BaseModel):
    """The quota run: a backfill bound by Visma's quota, the window compressed from an hour
    to seconds, with live supplier changes made while it waits (docs/visma-net.md §8.3)."""

    ledger: Dataset
    limit: int
    window_seconds: float
    reserve: float
    poll_interval: float
    live_changes: int
    live_change_interval: float
    timeout: float


class BenchSize(BaseModel):
    name: str
    # The tenant run: backfill, then latency and incremental cost on the same ledger.
    backfill: Dataset
    backfill_timeout: float
    # With webhooks on, the scheduled poll is only the safety net.
    safety_poll_interval: float = 30.0
    # One supplier is changed this many times per latency mode, one change per interval.
    latency_changes: int
    latency_change_interval: float
    latency_poll_interval: float = 1.0
    incremental_changed: int = 10
    # The naive sync is slow by design: its ledger is smaller than the backfill's.
    baseline: Dataset
    gateway_webhooks: int
    # Audit log rows under the console's Records and Overview timings.
    console_audit_rows: int = 1_000_000
    # The audit-scale run (`--runs audit-scale`): rows generated in the log, messages then
    # appended through the recorder, and whether the whole view is read too (once each).
    audit_scale_rows: int = 10_000_000
    audit_scale_inserts: int = 100_000
    audit_scale_whole_view: bool = True
    # The chaos run: its ledger, a service killed (and started again) every interval, each
    # of them this many times.
    chaos_ledger: Dataset
    chaos_kill_interval: float = 20.0
    chaos_rounds: int = 10
    quota: QuotaRun
    # The tenants run: this many companies with small ledgers, polled at this interval.
    tenants: int = 1000
    tenant_poll_interval: float = 30.0
    # What `python -m bench --size <name>` runs unless told otherwise.
    runs: tuple[str, ...] = ("tenant", "baseline", "gateway")


SIZES: dict[str, BenchSize] = {
    "small": BenchSize(
        name="small",
        backfill=Dataset(suppliers=30, purchase_orders=60, invoices=60),
        backfill_timeout=60.0,
        latency_changes=10,
        latency_change_interval=0.2,
        baseline=Dataset(suppliers=3, purchase_orders=6, invoices=6),
        gateway_webhooks=500,
        console_audit_rows=5_000,
        audit_scale_rows=20_000,
        audit_scale_inserts=2_000,
        chaos_ledger=Dataset(suppliers=300, purchase_orders=600, invoices=600),
        chaos_kill_interval=1.0,
        chaos_rounds=2,
        quota=QuotaRun(
            ledger=Dataset(suppliers=20, purchase_orders=20, invoices=600),
            limit=300,
            window_seconds=30.0,
            reserve=0.25,
            poll_interval=5.0,
            live_changes=15,
            live_change_interval=3.0,
            timeout=300.0,
        ),
        tenants=50,
        # The gateway's own start-up and drain dwarf a small run's sending: full size only.
        runs=("tenant", "baseline", "console", "chaos", "audit-scale", "quota"),
    ),
    "full": BenchSize(
        name="full",
        backfill=Dataset(suppliers=10_000, purchase_orders=50_000, invoices=50_000),
        backfill_timeout=7_200.0,
        latency_changes=500,
        latency_change_interval=0.5,
        baseline=Dataset(suppliers=200, purchase_orders=400, invoices=400),
        gateway_webhooks=5_000,
        chaos_ledger=Dataset(suppliers=10_000, purchase_orders=50_000, invoices=50_000),
        quota=QuotaRun(
            ledger=Dataset(suppliers=100, purchase_orders=100, invoices=3_000),
            limit=1_000,
            window_seconds=60.0,
            reserve=0.15,
            poll_interval=5.0,
            live_changes=60,
            live_change_interval=3.0,
            timeout=900.0,
        ),
        runs=("tenant", "baseline", "gateway", "console", "chaos", "quota"),
    ),
}


class ScenarioContext(BaseModel):
    """What every run gets besides its size."""

    log_dir: Path
    # Simulated API latency of both sandboxes in the baseline comparison, per call.
    latency_ms: float = 20.0
    # basware-writer processes in the pipeline's consumer group.
    writers: int = 1
    # Sample every process with py-spy during the backfill.
    profile: bool = False

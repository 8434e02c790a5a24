"""Runs the benchmark: each run on its own fresh stack and sandboxes, one after another.

A run measures one or more scenarios (the tenant run: backfill, incremental, latency) and
records each scenario's figures as soon as it has them. When a run fails, the scenarios it
had not recorded yet are listed as failed with the reason, the other runs still go, and the
benchmark as a whole counts as failed.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.audit_scale import audit_scale
from bench.baseline import baseline
from bench.chaos import chaos
from bench.console_pages import console_pages
from bench.gateway import gateway_rate
from bench.lifecycle import PHASES, tenant_lifecycle
from bench.quota import quota_bound
from bench.report import BenchReport, Figure, Record, ScenarioResult, error_summary
from bench.sizes import BenchSize, ScenarioContext
from bench.tenants import tenants

Run = Callable[[BenchSize, ScenarioContext, Record], Awaitable[None]]

RUNS: dict[str, tuple[tuple[str, ...], Run]] = {
    "tenant": (PHASES, tenant_lifecycle),
    "baseline": (("baseline",), baseline),
    "gateway": (("gateway",), gateway_rate),
    "console": (("console",), console_pages),
    "chaos": (("chaos",), chaos),
    "audit-scale": (("audit-scale",), audit_scale),
    "quota": (("quota",), quota_bound),
    # Not in any size's own runs: it takes minutes (`--runs tenants`).
    "tenants": (("tenants, 1 reader", "tenants, 2 readers"), tenants),
}


async def run_one(
    scenarios: Sequence[str], run: Run, size: BenchSize, context: ScenarioContext
) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    since = time.perf_counter()

    def record(scenario: str, figures: list[Figure]) -> None:
        nonlocal since
        now = time.perf_counter()
        results.append(
            ScenarioResult(scenario=scenario, ok=True, seconds=now - since, figures=figures)
        )
        print(f"    {scenario}: {len(figures)} figures in {now - since:.1f} s", flush=True)
        since = now

    try:
        await run(size, context, record)
    except Exception as error:
        traceback.print_exc()
        reason = f"{error_summary(error)} (logs: {context.log_dir})"
        recorded = {r.scenario for r in results}
        results += [
            ScenarioResult(
                scenario=name, ok=False, seconds=time.perf_counter() - since, error=reason
            )
            for name in scenarios
            if name not in recorded
        ]
    return results


async def run_bench(
    size: BenchSize,
    runs: Sequence[str],
    *,
    latency_ms: float,
    writers: int,
    profile: bool,
    results_dir: Path,
) -> BenchReport:
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    logs = results_dir / "logs" / f"{size.name}-{started_at:%Y%m%dT%H%M%S}"
    results: list[ScenarioResult] = []
    for name in runs:
        print(f"--- {name}", flush=True)
        scenarios, run = RUNS[name]
        # Services and sandboxes write their logs under here.
        (logs / name).mkdir(parents=True, exist_ok=True)
        context = ScenarioContext(
            log_dir=logs / name, latency_ms=latency_ms, writers=writers, profile=profile
        )
        results += await run_one(scenarios, run, size, context)
    return BenchReport(
        size=size.name,
        started_at=started_at,
        seconds=time.perf_counter() - started,
        cpus=os.cpu_count() or 0,
        simulated_latency_ms=latency_ms,
        writers=writers,
        scenarios=results,
    )

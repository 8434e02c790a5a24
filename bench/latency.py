"""Latency: one supplier changed in Visma at a steady rate, timed until Basware accepted it.

On an idle pipeline, one supplier's name is changed N times, one change per interval; each
name carries its version number, so every DeliveryResult says (through its change event)
which version Basware accepted. A change is in Basware once Basware accepted that version
or a later one: polling reads only the newest state, and an overtaken version is never sent
on its own. The latency of a change is the result's `occurred_at` (the writer saw
requestStatus final) minus the moment the benchmark wrote the change, both on this
machine's clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from bench.backdoors import VISMA_SUPPLIER
from bench.ledger import supplier_key
from bench.outcomes import OutcomeWatcher
from bench.pipeline import Pipeline
from bench.report import Figure, Target
from bench.stats import Percentiles
from bench.waiting import until
from mlconnector.contracts import Entity, Outcome, SupplierChanged

SUPPLIER = supplier_key(1)
NAME_PREFIX = "Benchmark Leverandør "
# After the last change, how long its delivery may take before the scenario fails.
SETTLE_TIMEOUT = 60.0


def versioned_name(version: int) -> str:
    return f"{NAME_PREFIX}{version:05d}"


def version_of(name: str) -> int | None:
    return int(name.removeprefix(NAME_PREFIX)) if name.startswith(NAME_PREFIX) else None


def change_latencies(
    changed_at: Sequence[datetime], accepted: Iterable[tuple[int, datetime]]
) -> list[float]:
    """Seconds from each change (version i written at changed_at[i]) to Basware's acceptance
    of version i or a later one; `accepted` holds (version, when) per accepted version."""
    accepted = list(accepted)
    latencies = []
    for version, written in enumerate(changed_at):
        later = [when for v, when in accepted if v >= version]
        if not later:
            raise ValueError(f"change {version} never reached Basware")
        latencies.append((min(later) - written).total_seconds())
    return latencies


def _accepted_versions(watcher: OutcomeWatcher) -> list[tuple[int, datetime]]:
    accepted = []
    for result in watcher.history[(Entity.SUPPLIER, SUPPLIER)]:
        change = watcher.changes.get(result.change_event_id)
        if result.outcome is Outcome.DELIVERED and isinstance(change, SupplierChanged):
            version = version_of(change.record.name)
            if version is not None:
                accepted.append((version, result.occurred_at))
    return accepted


async def timed_changes(
    pipeline: Pipeline, watcher: OutcomeWatcher, *, first: int, count: int, interval: float
) -> Percentiles:
    company = pipeline.company.company_id
    changed_at: list[datetime] = []
    due = time.perf_counter()
    for version in range(first, first + count):
        changed_at.append(datetime.now(UTC))
        changes = {"name": versioned_name(version)}
        await pipeline.visma.update(company, VISMA_SUPPLIER, SUPPLIER, changes)
        due += interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
    last = first + count - 1

    async def last_accepted() -> bool:
        return any(version >= last for version, _ in _accepted_versions(watcher))

    await until(pipeline, last_accepted, timeout=SETTLE_TIMEOUT, what=f"version {last} accepted")
    accepted = [(v - first, when) for v, when in _accepted_versions(watcher) if v >= first]
    return Percentiles.of(change_latencies(changed_at, accepted))


def latency_figures(mode: str, latency: Percentiles, p50: float | None, p99: float) -> list[Figure]:
    source = "change written in Visma to DeliveryResult.occurred_at"
    return [
        Figure(
            name=f"{mode}: p50 ({latency.samples} changes)",
            value=latency.p50,
            unit="s",
            source=source,
            target=Target(op="<", value=p50) if p50 is not None else None,
        ),
        Figure(name=f"{mode}: p95", value=latency.p95, unit="s", source=source),
        Figure(
            name=f"{mode}: p99",
            value=latency.p99,
            unit="s",
            source=source,
            target=Target(op="<", value=p99),
        ),
    ]

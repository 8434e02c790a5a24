"""Reconcile after the backfill: `mlconnector reconcile --json` over the whole ledger, as an
operator runs it at month-end, timed from launch to exit.

Figures: its wall time, the list calls it made to each system (its own report: one per page;
the sandboxes' counters would also count the reader's safety polls meanwhile), Visma calls per
500 records, and the records it found not equal (a clean backfill leaves none).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bench.pipeline import Pipeline
from bench.report import Figure, Target
from mlconnector_cli.run import demo_connection_env
from mlconnector_cli.stack import Stack
from reconciler.once import ReconcileOutput

MLCONNECTOR = Path(sys.executable).parent / "mlconnector"
RECORDS_PER_VISMA_CALL = 500
MAX_SECONDS = 60.0
# Below this, one call per entity is already more than one per 500 records: no target.
LEDGER_FOR_CALL_TARGET = 10_000


async def reconcile_figures(
    pipeline: Pipeline, stack: Stack, records: int, home: Path
) -> list[Figure]:
    """Runs the command once; `home` is its MLC_HOME (no stack file there)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "MLC_HOME": str(home),
        **stack.environment(),
        **demo_connection_env(pipeline.urls),
    }
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        str(MLCONNECTOR),
        "reconcile",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    seconds = time.perf_counter() - started
    if not out.startswith(b"{"):
        raise RuntimeError(f"mlconnector reconcile failed ({process.returncode}): {err.decode()}")
    (report,) = ReconcileOutput.model_validate_json(out).connections
    not_equal = sum(len(e.differences) for e in report.entities)
    return [
        Figure(
            name=f"reconcile wall time, {records:,} records",
            value=seconds,
            unit="s",
            source="`mlconnector reconcile --json`, launch to exit",
            target=Target(op="<", value=MAX_SECONDS),
        ),
        Figure(
            name="reconcile: reading and comparing (without start-up and storing)",
            value=(report.finished_at - report.started_at).total_seconds(),
            unit="s",
            source="the reconcile's report: started_at to finished_at",
        ),
        Figure(
            name="reconcile: Visma calls",
            value=report.calls.visma,
            unit="calls",
            source="the reconcile's report (one list call per page)",
        ),
        Figure(
            name=f"reconcile: Visma calls per {RECORDS_PER_VISMA_CALL} records",
            value=report.calls.visma / records * RECORDS_PER_VISMA_CALL,
            unit="calls",
            source="Visma calls / records x 500",
            target=Target(op="<", value=1) if records >= LEDGER_FOR_CALL_TARGET else None,
        ),
        Figure(
            name="reconcile: Basware calls",
            value=report.calls.basware,
            unit="calls",
            source="the reconcile's report (one list call per page; a 302 is followed once)",
        ),
        Figure(
            name="reconcile: records not equal after the backfill",
            value=not_equal,
            unit="records",
            source="the reconcile's report",
            target=Target(op="<=", value=0),
        ),
    ]

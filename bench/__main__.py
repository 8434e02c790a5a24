"""`python -m bench --size small|full`: run the benchmark, print the table, keep the JSON.

Exits 0 when every scenario completed (whatever its figures), 1 when one failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bench.report import BenchReport, render_table
from bench.runner import RUNS, run_bench
from bench.sizes import SIZES, Dataset

MIN_RECORDS_PER_SECOND = 10.0
# The figures before issue 14, printed beside a run of the same size.
BEFORE = Path(__file__).with_name("before.json")


def figures_before(size: str) -> BenchReport | None:
    if not BEFORE.exists():
        return None
    before = BenchReport.model_validate_json(BEFORE.read_text())
    return before if before.size == size else None


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="simulated API latency per call for the baseline comparison (both sandboxes)",
    )
    parser.add_argument(
        "--runs",
        help=f"comma-separated subset of: {', '.join(RUNS)} (default: the size's own)",
    )
    parser.add_argument(
        "--records",
        type=int,
        help="backfill ledger of about this many records instead of the size's "
        "(proportions 1 supplier : 5 POs : 5 invoices), e.g. to measure part of `full`",
    )
    parser.add_argument(
        "--tenants",
        type=int,
        help="companies of the tenants run (default: the size's): --runs tenants --tenants 1000",
    )
    parser.add_argument(
        "--writers", type=int, default=1, help="basware-writer processes in the pipeline"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample every process with py-spy during the backfill and list the hot spots",
    )
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    size = SIZES[args.size]
    if args.records:
        backfill = Dataset.of_total(args.records)
        # A bigger ledger than the size's own gets the time a slow pipeline would need.
        timeout = max(size.backfill_timeout, backfill.records / MIN_RECORDS_PER_SECOND)
        size = size.model_copy(update={"backfill": backfill, "backfill_timeout": timeout})
    if args.tenants:
        size = size.model_copy(update={"tenants": args.tenants})
    chosen = args.runs.split(",") if args.runs else size.runs
    names = [name.strip() for name in chosen if name.strip()]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs: {', '.join(unknown)}")
    report = asyncio.run(
        run_bench(
            size,
            names,
            latency_ms=args.latency_ms,
            writers=args.writers,
            profile=args.profile,
            results_dir=args.results,
        )
    )
    print()
    print(
        f"ml-connector benchmark, size {report.size}, {report.cpus} CPUs, "
        f"{report.writers} writer(s), {report.seconds:.1f} s in all"
    )
    before = figures_before(report.size)
    if before is not None:
        print(f"before: {before.note}")
    print(render_table(report.scenarios, before))
    print(f"\nwritten to {report.write(args.results)}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

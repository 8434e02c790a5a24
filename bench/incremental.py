"""Incremental cost: a ledger at rest, a few records changed since the last poll.

After the backfill of N records, last modified a day ago or earlier (`ledger.py`), the
reader finishes an idle poll cycle, then 10 records change and the next scheduled cycle
picks them up. Figures: the Visma calls that cycle made (the sandbox's request counters), in
all and for the busiest entity (the reader polls each entity on its own: suppliers,
receipts, purchase orders, invoices), and the time it took (the reader's
mlc_reader_poll_duration_seconds histogram). Webhooks are off: this is the cost of polling
alone.
"""

from __future__ import annotations

from bench.ledger import change_records
from bench.pipeline import Pipeline
from bench.reader_cycles import POLL_TIME, POLLS, PUBLISHED, READ, cycle_end
from bench.report import Figure, Target

CYCLE_TIMEOUT = 60.0


async def incremental_figures(pipeline: Pipeline, records: int, changed: int) -> list[Figure]:
    """Measures one scheduled poll cycle that finds `changed` changes among `records`.

    The reader must poll on a schedule with webhooks off, over a ledger at rest."""
    # One whole idle cycle first: the measured one then starts from settled cursors.
    idle = await cycle_end(pipeline, after_polls=0, min_read=0, timeout=CYCLE_TIMEOUT)
    before = await cycle_end(
        pipeline, after_polls=idle.total(POLLS), min_read=0, timeout=CYCLE_TIMEOUT
    )
    counted = await pipeline.visma.counters()
    await change_records(pipeline, changed)
    after = await cycle_end(
        pipeline, after_polls=before.total(POLLS), min_read=0, timeout=CYCLE_TIMEOUT
    )
    spent = {
        route: calls - counted.get(route, 0)
        for route, calls in (await pipeline.visma.counters()).items()
    }
    published = after.total(PUBLISHED) - before.total(PUBLISHED)
    if published != changed:
        raise RuntimeError(f"the cycle published {published:.0f} events for {changed} changes")
    return [
        Figure(
            name=f"Visma calls, one poll cycle ({changed} changed of {records:,})",
            value=sum(spent.values()),
            unit="calls",
            source="Visma sandbox request counters",
        ),
        Figure(
            name="Visma calls, busiest entity in that cycle",
            value=max(spent.values(), default=0),
            unit="calls",
            source="Visma sandbox request counters",
            target=Target(op="<=", value=2),
        ),
        Figure(
            name="records read in that cycle",
            value=after.total(READ) - before.total(READ),
            unit="records",
            source="visma-reader mlc_reader_records_read",
        ),
        Figure(
            name="poll cycle time",
            value=after.total(POLL_TIME) - before.total(POLL_TIME),
            unit="s",
            source="visma-reader mlc_reader_poll_duration_seconds",
        ),
    ]

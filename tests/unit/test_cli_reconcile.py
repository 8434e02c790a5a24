"""`mlconnector reconcile`'s table: totals per entity, then each record not equal on one
line with its fields and both values, then what --heal re-published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlconnector_cli.reconcile import render
from reconciler.compare import Side as S
from reconciler.compare import compare
from reconciler.heal import Healed
from reconciler.once import ReconcileOutput
from reconciler.reading import Calls, ConnectionReport

START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_table_names_each_difference_with_both_values() -> None:
    suppliers = compare(
        "supplier",
        [S(key="S1", entity_id="S1", owned={"name": "Nordlys AS"}), S(key="S2", entity_id="S2")],
        [S(key="S1", owned={"name": "Sørlys AS"})],
    )
    report = ConnectionReport(
        connection="acme",
        tenant="1000001",
        started_at=START,
        finished_at=START + timedelta(seconds=2.5),
        calls=Calls(visma=3, basware=7),
        entities=[suppliers],
    )
    output = ReconcileOutput(
        connections=[report],
        healed=[Healed(entity="supplier", entity_id="S2", event_id="e2", replay_of="c2")],
    )

    lines = render(output).splitlines()

    assert lines[0] == (
        "acme (Visma company 1000001): NOT EQUAL in 2.5s, 3 Visma and 7 Basware list calls"
    )
    assert lines[2].split()[:8] == ["supplier", "2", "1", "0", "1", "1", "0", "0"]
    different = next(line for line in lines if "different" in line and "S1" in line)
    assert 'name: visma="Nordlys AS" basware="Sørlys AS"' in different
    assert any(line.split()[:3] == ["supplier", "S2", "missing"] for line in lines)
    assert "re-published 1 records (replays, reason reconcile):" in lines

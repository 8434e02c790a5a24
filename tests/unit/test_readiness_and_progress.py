"""/readyz's verdict from its probes, and the terminal's progress line."""

from __future__ import annotations

import asyncio

import pytest
from faststream.kafka import KafkaBroker

from mlconnector.audit.status import RecordState, StateSummary
from mlconnector.contracts import Entity
from mlconnector.readiness import NotReady, Readiness, tasks_probe
from mlconnector.sync_status import eta_text
from mlconnector_cli.progress import LINE_WIDTH, RateMeter, render_line, snapshot_of


def readiness_without_broker() -> Readiness:
    readiness = Readiness(KafkaBroker("127.0.0.1:1"))

    async def broker_up() -> None:
        return None

    readiness.add("broker", broker_up)  # replaces the real broker probe: no broker here
    return readiness


async def test_ready_only_when_every_probe_is() -> None:
    readiness = readiness_without_broker()

    async def database_up() -> None:
        return None

    readiness.add("database", database_up)
    assert (await readiness.report()).ready is True

    async def database_gone() -> None:
        raise OSError("connection refused")

    readiness.add("database", database_gone)
    report = await readiness.report()
    assert report.ready is False
    assert report.checks["broker"] == "ok"
    assert report.checks["database"].startswith("OSError")


async def test_a_probe_that_hangs_is_not_ready_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlconnector.readiness.PROBE_TIMEOUT_SECONDS", 0.05)
    readiness = readiness_without_broker()
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    readiness.add("database", hangs)
    report = await readiness.report()
    assert report.ready is False
    assert "no answer" in report.checks["database"]


async def test_the_main_loop_probe_sees_a_loop_that_ended() -> None:
    running: list[asyncio.Task[None]] | None = None

    async def forever() -> None:
        await asyncio.Event().wait()

    async def crashes() -> None:
        raise RuntimeError("boom")

    probe = tasks_probe("the scheduler", lambda: running)
    with pytest.raises(NotReady, match="has not started"):
        await probe()
    running = [asyncio.create_task(forever(), name="poll:a")]
    await probe()
    ended = asyncio.create_task(crashes(), name="poll:b")
    await asyncio.gather(ended, return_exceptions=True)
    running.append(ended)
    with pytest.raises(NotReady, match="poll:b"):
        await probe()
    running[0].cancel()


def summary(entity: Entity, state: RecordState, records: int) -> StateSummary:
    return StateSummary(
        tenant="1000001", entity=entity.value, state=state, records=records, oldest_change_at=None
    )


def test_the_progress_line_fits_80_columns_and_shows_totals_rate_and_eta() -> None:
    snapshot = snapshot_of(
        [
            summary(Entity.SUPPLIER, RecordState.DELIVERED, 10_000),
            summary(Entity.PURCHASE_ORDER, RecordState.DELIVERED, 12_345),
            summary(Entity.PURCHASE_ORDER, RecordState.REJECTED, 3),
            summary(Entity.SUPPLIER_INVOICE, RecordState.PARKED, 1_000),
            summary(Entity.SUPPLIER_INVOICE, RecordState.FAILED, 2),
        ],
        {Entity.SUPPLIER: 10_000, Entity.PURCHASE_ORDER: 50_000, Entity.SUPPLIER_INVOICE: 50_000},
    )
    line = render_line(snapshot, rate=150.0)
    assert len(line) <= LINE_WIDTH
    assert line.startswith(" 20% 22350/110000")
    assert "150/s ETA 10min · 3 rejected · 2 failed · 1000 parked" in line


def test_caught_up_once_everything_has_its_answer() -> None:
    totals = {Entity.SUPPLIER: 2, Entity.PURCHASE_ORDER: 0, Entity.SUPPLIER_INVOICE: 0}
    waiting = snapshot_of([summary(Entity.SUPPLIER, RecordState.PENDING, 2)], totals)
    assert not render_line(waiting, None).startswith("caught up")
    done = snapshot_of([summary(Entity.SUPPLIER, RecordState.DELIVERED, 2)], totals)
    assert render_line(done, None) == "caught up: 2/2 delivered · sup 2/2 po 0/0 inv 0/0"
    assert done.all_delivered()


def test_the_rate_is_measured_over_the_recent_window() -> None:
    meter = RateMeter()
    assert meter.per_second() is None
    meter.add(0, now=100.0)
    meter.add(50, now=110.0)
    assert meter.per_second() == 5.0
    meter.add(50, now=145.0)
    meter.add(50, now=150.0)  # the first two samples left the 30 s window: nothing moved since
    assert meter.per_second() == 0.0
    assert eta_text(100, None) == "?"
    assert eta_text(7200, 1.0) == "2.0h"

"""The pure parts of the recovery from a lost broker: what the epoch marks say, when a
consumer rewinds, how polls make way for a recovery, how the launcher holds its processes
still while it replaces the broker, and how `--sync-once` ends while the broker is away."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlconnector.broker_epoch import EpochFollower, broker_memory
from mlconnector.contracts import Entity
from mlconnector.settings import KafkaSettings
from mlconnector.sync_status import EntityProgress
from mlconnector_cli.broker_health import BrokerHealth
from mlconnector_cli.processes import ManagedProcess, held_still
from mlconnector_cli.progress import ProgressSnapshot, render_line
from mlconnector_cli.run import RunOptions, sync_once_verdict
from visma_reader.poll_gate import PollGate, PollInterrupted


def test_marks_of_the_latest_epoch_on_every_topic_mean_the_broker_kept_everything() -> None:
    memory = broker_memory(7, {"visma.changes": 7, "basware.results": 7})
    assert memory.intact
    assert memory.lost == ()


def test_a_missing_or_foreign_mark_names_the_topics_lost() -> None:
    memory = broker_memory(7, {"visma.changes": None, "basware.results": 9, "other": 7})
    assert not memory.intact
    assert memory.lost == ("visma.changes", "basware.results")
    assert "no mark of epoch 7 on visma.changes, basware.results" in memory.describe()


def test_a_database_without_an_epoch_recovers_once_whatever_the_broker_holds() -> None:
    memory = broker_memory(None, {"visma.changes": 7})
    assert not memory.intact
    assert memory.describe() == "no broker epoch recorded yet"


def test_a_consumer_rewinds_only_when_a_mark_moves_from_one_epoch_to_another() -> None:
    follower = EpochFollower()
    assert follower.changed({"t": None}) == set()  # not marked yet
    assert follower.changed({"t": 1}) == set()  # the first mark it sees
    follower.settle({"t": 1})
    assert follower.changed({"t": None}) == set()  # lost, not marked anew yet: wait
    follower.settle({"t": None})
    assert follower.changed({"t": 2, "u": 5}) == {"t"}
    assert follower.changed({"t": 2, "u": 5}) == {"t"}  # until it settles on it
    follower.settle({"t": 2, "u": 5})
    assert follower.changed({"t": 2, "u": 5}) == set()


async def let_others_run() -> None:
    """Yields to the loop often enough for any ready task to get as far as it can."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_recovery_stops_polls_between_pages_and_holds_new_ones_until_it_is_done() -> None:
    gate = PollGate(open_at_start=True)
    steps: list[str] = []
    page_read = asyncio.Event()

    async def poll_under_way() -> None:
        async with gate.passage():
            page_read.set()
            await asyncio.sleep(0)
            while True:
                await asyncio.sleep(0.01)
                gate.check()

    polling = asyncio.create_task(poll_under_way())
    await page_read.wait()

    async def recovery() -> None:
        async with gate.closed():
            steps.append("recovering")
            late = asyncio.create_task(late_poll())
            await let_others_run()
            steps.append("recovered")
        await late

    async def late_poll() -> None:
        async with gate.passage():
            steps.append("late poll")

    await recovery()
    with pytest.raises(PollInterrupted):
        await polling
    assert steps == ["recovering", "recovered", "late poll"]


async def test_the_polls_of_a_process_wait_for_its_first_look_at_the_broker() -> None:
    gate = PollGate()
    entered = asyncio.Event()

    async def poll() -> None:
        async with gate.passage():
            entered.set()

    polling = asyncio.create_task(poll())
    await let_others_run()
    assert not entered.is_set()
    gate.open()
    await polling
    assert entered.is_set()


def snapshot(delivered: int, total: int = 10) -> ProgressSnapshot:
    return ProgressSnapshot(
        entities={Entity.SUPPLIER: EntityProgress(total=total, delivered=delivered)}
    )


def health() -> BrokerHealth:
    return BrokerHealth(KafkaSettings(bootstrap_servers="127.0.0.1:1"), since=datetime.now(UTC))


def process_state(pid: int) -> str:
    """The kernel's one-letter state of the process: T while it is stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def state_becomes(pid: int, wanted: set[str]) -> str:
    # A guard against a hang, not a timed assertion: a signal takes effect soon, not at once.
    async with asyncio.timeout(10):
        while (state := process_state(pid)) not in wanted:
            await asyncio.sleep(0.01)
    return state


async def test_the_launcher_holds_its_processes_still_while_it_replaces_the_broker(
    tmp_path: Path,
) -> None:
    sleeper = ManagedProcess("sleeper", ["sleep", "60"], env={}, log_dir=tmp_path)
    await sleeper.start()
    assert sleeper.pid is not None

    async def a_replacement_that_fails(pid: int) -> None:
        with held_still([sleeper]):
            assert await state_becomes(pid, {"T"}) == "T"
            raise RuntimeError("the new broker did not start")

    try:
        with pytest.raises(RuntimeError):
            await a_replacement_that_fails(sleeper.pid)
        # Continued even though the replacement failed.
        assert await state_becomes(sleeper.pid, {"S", "R"}) in {"S", "R"}
    finally:
        await sleeper.stop()


def test_sync_once_waits_for_a_broker_that_does_not_answer_instead_of_counting_missing() -> None:
    options = RunOptions(sync_once=True, timeout=60)
    broker = health()
    broker.down_since = time.monotonic() - 30
    assert sync_once_verdict(options, snapshot(3), broker, elapsed=500) is None
    broker.down_since = time.monotonic() - 61
    code, said = sync_once_verdict(options, snapshot(3), broker, elapsed=500) or (0, "")
    assert code == 1
    assert said.startswith("the broker at 127.0.0.1:1 has not answered for 61 s")
    assert "missing" not in said


def test_sync_once_does_not_count_the_time_the_broker_was_away_or_recovering() -> None:
    options = RunOptions(sync_once=True, timeout=60)
    broker = health()
    broker.stalled_seconds = 45
    assert sync_once_verdict(options, snapshot(3), broker, elapsed=100) is None
    code, said = sync_once_verdict(options, snapshot(3), broker, elapsed=110) or (0, "")
    assert code == 1
    assert "still missing per entity: {'supplier': 7" in said
    assert sync_once_verdict(options, snapshot(10), broker, elapsed=999) == (
        0,
        "all 10 records delivered in 999.0 s",
    )


def test_the_progress_line_says_why_nothing_moves() -> None:
    line = render_line(snapshot(3), None, "broker 127.0.0.1:8709 unreachable")
    assert line.startswith("broker 127.0.0.1:8709 unreachable · ")

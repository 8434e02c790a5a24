"""ServiceLifecycle: a service's loops as /readyz sees them, and what it closes at stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mlconnector.lifecycle import NotStarted, ServiceLifecycle
from mlconnector.readiness import NotReady, tasks_probe
from mlconnector.settings import DatabaseSettings


class Lifecycle(ServiceLifecycle[None]):
    loops_name = "test loop"

    async def open(self) -> None:
        """Opens nothing: these tests need no database."""


async def forever() -> None:
    await asyncio.Event().wait()


async def at_once() -> None:
    return None


async def test_loops_are_unstarted_then_running_then_reported_when_one_ends() -> None:
    lifecycle = Lifecycle("test", DatabaseSettings(), None, pool_size=1)
    probe = tasks_probe(f"the {lifecycle.loops_name}", lifecycle.loops)
    with pytest.raises(NotReady, match="the test loop has not started"):
        await probe()

    await lifecycle.begin()
    lifecycle.run_loop("waits", forever())
    await probe()
    lifecycle.run_loop("ends", at_once())
    ended = [t for t in lifecycle.loops() or () if t.get_name() == "ends"]
    await asyncio.wait(ended)
    with pytest.raises(NotReady, match="the test loop stopped: ends"):
        await probe()

    running = list(lifecycle.loops() or ())
    await lifecycle.halt()
    assert lifecycle.loops() is None
    assert all(t.done() for t in running)
    with pytest.raises(NotReady, match="has not started"):
        await probe()


async def test_close_closes_in_reverse_order_and_the_pool_is_asked_for_only_once_open() -> None:
    lifecycle = Lifecycle("test", DatabaseSettings(), None, pool_size=1)
    with pytest.raises(NotStarted, match="the database pool of test is not open yet"):
        _ = lifecycle.pool
    closed: list[str] = []

    def closing(name: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            closed.append(name)

        return close

    lifecycle.on_close(closing("opened first"))
    lifecycle.on_close(closing("opened last"))
    await lifecycle.close()
    assert closed == ["opened last", "opened first"]

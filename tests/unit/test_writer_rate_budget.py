"""Takers of one request budget are served together: one reservation per round trip."""

from __future__ import annotations

import asyncio

import pytest

from mlconnector.basware.rate_budget import SlotRequests


async def test_takers_asking_together_share_one_reservation_and_each_gets_its_own_slot() -> None:
    asked: list[int] = []
    release = asyncio.Event()

    async def reserve(slots: int) -> list[float]:
        asked.append(slots)
        await release.wait()
        return [0.1 * n for n in range(slots)]

    requests = SlotRequests(reserve)
    first = asyncio.create_task(requests.take())
    await asyncio.sleep(0)
    # While the first reservation is on its way, three more callers ask.
    later = [asyncio.create_task(requests.take()) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()

    assert await first == 0.0
    assert await asyncio.gather(*later) == pytest.approx([0.0, 0.1, 0.2])
    assert asked == [1, 3]


async def test_a_failed_reservation_fails_its_takers_and_the_next_one_is_tried_anew() -> None:
    answers: list[list[float] | Exception] = [OSError("database away"), [0.0]]

    async def reserve(slots: int) -> list[float]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    requests = SlotRequests(reserve)
    with pytest.raises(OSError, match="database away"):
        await requests.take()
    assert await requests.take() == 0.0

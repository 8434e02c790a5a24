"""Idle consumers wait longer per empty fetch.

A consumer's fetch waits at most `fetch_max_wait_ms` for data before the broker answers
empty; a short wait keeps latency low while there is work, but an idle pipeline then spins
on empty fetches. Once no new message reached any partition a consumer owns for
`idle_after_seconds`, its fetches wait `idle_fetch_max_wait_ms` instead; the first message
that arrives (the broker answers a waiting fetch as soon as it has data) sets it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from mlconnector.lag import GroupConsumer
from mlconnector.settings import KafkaSettings

CHECK_SECONDS = 1.0


def high_watermarks(consumer: AIOKafkaConsumer) -> int:
    """The sum of the assigned partitions' high watermarks known from fetches: it moves
    when a message arrives."""
    return sum(consumer.highwater(tp) or 0 for tp in consumer.assignment())


def set_fetch_wait(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
    # aiokafka has no setter; its fetcher reads the attribute for every fetch request.
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is not None:
        fetcher._fetch_max_wait_ms = wait_ms


async def lengthen_idle_fetches(
    settings: KafkaSettings, consumers: Callable[[], Iterable[GroupConsumer]]
) -> None:
    """Runs until cancelled (nothing to do when the idle wait is not longer)."""
    if settings.idle_fetch_max_wait_ms <= settings.fetch_max_wait_ms:
        return
    seen: dict[int, tuple[int, float]] = {}
    while True:
        now = time.monotonic()
        for _, consumer in consumers():
            with contextlib.suppress(KafkaError, AssertionError):  # stopping under us
                marks = high_watermarks(consumer)
                last_marks, active_at = seen.get(id(consumer), (-1, now))
                if marks != last_marks:
                    active_at = now
                seen[id(consumer)] = (marks, active_at)
                idle = now - active_at >= settings.idle_after_seconds
                set_fetch_wait(
                    consumer,
                    settings.idle_fetch_max_wait_ms if idle else settings.fetch_max_wait_ms,
                )
        await asyncio.sleep(CHECK_SECONDS)

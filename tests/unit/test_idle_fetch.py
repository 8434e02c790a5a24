"""An idle consumer's fetches wait longer; the first new message sets them back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from mlconnector import idle_fetch
from mlconnector.settings import KafkaSettings


class Consumer:
    def __init__(self) -> None:
        self.marks = {TopicPartition("t", 0): 5}
        self._fetcher = SimpleNamespace(_fetch_max_wait_ms=20)

    def assignment(self) -> set[TopicPartition]:
        return set(self.marks)

    def highwater(self, tp: TopicPartition) -> int:
        return self.marks[tp]


async def test_fetches_wait_longer_while_idle_and_shorter_once_a_message_arrives(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(idle_fetch, "CHECK_SECONDS", 0.01)
    settings = KafkaSettings(
        fetch_max_wait_ms=20, idle_fetch_max_wait_ms=500, idle_after_seconds=0.05
    )
    consumer = Consumer()
    found = [("group", cast(AIOKafkaConsumer, consumer))]
    task = asyncio.create_task(idle_fetch.lengthen_idle_fetches(settings, lambda: found))
    try:
        async with asyncio.timeout(5):
            while consumer._fetcher._fetch_max_wait_ms != 500:
                await asyncio.sleep(0.01)
            consumer.marks[TopicPartition("t", 0)] = 6
            while consumer._fetcher._fetch_max_wait_ms != 20:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()

"""Consumer lag as a Prometheus gauge: `mlc_consumer_lag{group, topic}`.

Measured from the fetch high watermark of the partitions this process owns, not from
end_offsets, which the embedded broker can answer from inside its last batch
(docs/event-broker.md §3.2). Each process reports only its own partitions; the sum over a group's
processes is the group's lag (`mlconnector status` adds them up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from prometheus_client import Gauge

CONSUMER_LAG = Gauge(
    "mlc_consumer_lag",
    "Messages on the broker not yet consumed, over the partitions this process owns",
    ["group", "topic"],
)
LAG_INTERVAL_SECONDS = 5.0
# position() is answered locally once a partition's position is known; a partition still
# resetting would otherwise hold the report up.
POSITION_TIMEOUT_SECONDS = 1.0

GroupConsumer = tuple[str, AIOKafkaConsumer]


async def measure_lag(consumer: AIOKafkaConsumer) -> dict[str, int]:
    """Lag per topic over the consumer's assigned partitions whose watermark is known."""
    lag: defaultdict[str, int] = defaultdict(int)
    for partition in consumer.assignment():
        high = consumer.highwater(partition)
        if high is None:
            continue
        try:
            position = await asyncio.wait_for(
                consumer.position(partition), POSITION_TIMEOUT_SECONDS
            )
        except (TimeoutError, AssertionError):  # revoked meanwhile, or not fetched yet
            continue
        lag[partition.topic] += max(0, high - position)
    return dict(lag)


def broker_consumers(broker: KafkaBroker) -> list[GroupConsumer]:
    """The aiokafka consumers behind a FastStream broker's group subscribers."""
    found: list[GroupConsumer] = []
    for subscriber in broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        group = getattr(subscriber, "group_id", None)
        if isinstance(consumer, AIOKafkaConsumer) and group:
            found.append((group, consumer))
    return found


async def report_lag(
    consumers: Callable[[], Iterable[GroupConsumer]],
    interval: float = LAG_INTERVAL_SECONDS,
) -> None:
    """Runs until cancelled; a topic no longer assigned here drops to 0."""
    seen: set[tuple[str, str]] = set()
    while True:
        current: dict[tuple[str, str], int] = {}
        for group, consumer in consumers():
            with contextlib.suppress(KafkaError, AssertionError):  # stopping under us: next round
                for topic, value in (await measure_lag(consumer)).items():
                    current[(group, topic)] = current.get((group, topic), 0) + value
        for labels in seen - current.keys():
            CONSUMER_LAG.labels(*labels).set(0)
        for labels, value in current.items():
            CONSUMER_LAG.labels(*labels).set(value)
        seen |= current.keys()
        await asyncio.sleep(interval)

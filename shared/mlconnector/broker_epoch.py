"""The broker's epoch marks: how every service tells a broker that lost what it held (a new,
empty one at the same address; a topic deleted and created again) from the one there was.

visma-reader marks the broker (visma_reader/broker_watch.py): after each recovery from a
lost broker, and on a database's first start, it commits an epoch, a random number, as the
offset of a consumer group that consumes nothing (`EPOCH_GROUP`), on partition 0 of each
topic it watches. Committed offsets live in the broker, so a new broker has none, and a topic
created again has lost its own. The reader compares the marks with the epoch it recorded in
PostgreSQL and recovers from the database when they differ.

Every other consumer follows the marks too (`follow_broker_epoch`, run by `service_app`), for
its own positions: a consumer that lived through the loss may have committed an offset of
the old broker into the new one (aiokafka sends a commit made during the group's re-join
under the new generation), which points past the new broker's log, or into it, past
records it never read. So once a topic's mark changes from one epoch to another, the
process rewinds its partitions of that topic (and of the topics nobody marks) to the start
of the new log and commits that: it reads the new broker from its beginning, and drops what
it already handled by event id, as after any re-delivery. A partition whose position is past
the end of its log is rewound too, marks or not: the log is not the one the position was
taken on (a process that never saw the epoch before the loss finds it that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import BaseModel, ConfigDict

from mlconnector.kafka import client_security
from mlconnector.lag import GroupConsumer
from mlconnector.settings import KafkaSettings

log = logging.getLogger(__name__)

# The group whose committed offsets are the marks; nothing ever consumes in it.
EPOCH_GROUP = "mlconnector.broker-epoch"
# The partition of each marked topic that carries the mark.
MARK_PARTITION = 0
# How often a process looks at the marks for its consumers' sake.
FOLLOW_INTERVAL_SECONDS = 2.0
# position() is answered locally once a partition's position is known.
POSITION_TIMEOUT = 1.0
# A rewind that gets no start offsets by then is tried again at the next look, instead of
# waiting out the client's request timeout.
REWIND_TIMEOUT_SECONDS = 5.0

Marks = Mapping[str, int | None]


class BrokerMemory(BaseModel):
    """What the marks say about the broker, against the latest epoch recorded."""

    model_config = ConfigDict(frozen=True)

    epoch: int | None
    # Topics whose mark is missing or another epoch's: lost since `epoch` was marked.
    lost: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return self.epoch is not None and not self.lost

    def describe(self) -> str:
        if self.epoch is None:
            return "no broker epoch recorded yet"
        return f"the broker holds no mark of epoch {self.epoch} on {', '.join(self.lost)}"


def broker_memory(epoch: int | None, marks: Marks) -> BrokerMemory:
    return BrokerMemory(
        epoch=epoch,
        lost=tuple(t for t, mark in marks.items() if epoch is None or mark != epoch),
    )


class EpochMarks:
    """The marks on the broker: committed offsets of EPOCH_GROUP, one per topic."""

    def __init__(self, kafka: KafkaSettings, topics: Sequence[str]) -> None:
        self._kafka = kafka
        self.topics = list(topics)

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[AIOKafkaConsumer]:
        # A client per look: nothing of an old broker's connections or metadata is kept.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=EPOCH_GROUP,
            client_id=EPOCH_GROUP,
            enable_auto_commit=False,
            **client_security(self._kafka),
        )
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    async def read(self, topics: Iterable[str] | None = None) -> dict[str, int | None]:
        """The mark on each topic (these, or all of this object's); None where there is none."""
        wanted = self.topics if topics is None else sorted(set(topics))
        async with self._client() as consumer:
            return {t: await consumer.committed(TopicPartition(t, MARK_PARTITION)) for t in wanted}

    async def write(self, epoch: int) -> None:
        partitions = [TopicPartition(t, MARK_PARTITION) for t in self.topics]
        async with self._client() as consumer:
            consumer.assign(partitions)
            # Assigned only to commit: nothing is fetched.
            consumer.pause(*partitions)
            await consumer.commit({tp: OffsetAndMetadata(epoch, "") for tp in partitions})


class EpochFollower:
    """Which topics changed epoch since the marks this process last settled on."""

    def __init__(self) -> None:
        self._known: dict[str, int] = {}

    def changed(self, marks: Marks) -> set[str]:
        """Topics whose mark moved from one epoch to another. A topic's first mark (a new
        database, or a mark this process never saw) is no change; a missing mark is not one
        yet either: the rewind waits until the reader has recovered and marked again, so
        that it comes after any stray commit of the re-join."""
        return {
            t for t, mark in marks.items() if mark is not None and self._known.get(t, mark) != mark
        }

    def settle(self, marks: Marks) -> None:
        """The consumers are on these marks now."""
        self._known.update({t: mark for t, mark in marks.items() if mark is not None})


async def rewind(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
    """Moves the partitions to the start of their log and commits it."""
    starts = await asyncio.wait_for(
        consumer.beginning_offsets(list(partitions)), REWIND_TIMEOUT_SECONDS
    )
    for partition, start in starts.items():
        consumer.seek(partition, start)
    await consumer.commit({tp: OffsetAndMetadata(start, "") for tp, start in starts.items()})


async def beyond_the_end(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Partitions whose position is past the end of the log the broker reported in its last
    fetch: a log that is not the one the position was taken on (the embedded broker answers
    such a fetch with nothing rather than with an out-of-range error)."""
    found: list[TopicPartition] = []
    for partition in consumer.assignment():
        end = consumer.highwater(partition)
        if end is None:
            continue
        try:
            position = await asyncio.wait_for(consumer.position(partition), POSITION_TIMEOUT)
        except (TimeoutError, AssertionError):  # revoked meanwhile, or still resetting
            continue
        if position > end:
            found.append(partition)
    return found


def not_on_the_broker(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Partitions of the consumer's assignment that the broker does not have: the new
    broker's topic was created by a client's request before the launcher created it, with
    fewer partitions (docs/event-broker.md §3.6). The group joins again onto the partitions there
    are; the assignment before that is no place to rewind (its start offsets never come)."""
    return [
        tp
        for tp in consumer.assignment()
        if tp.partition not in (consumer.partitions_for_topic(tp.topic) or set())
    ]


def _to_rewind(
    consumer: AIOKafkaConsumer, moved: set[str], marked: set[str]
) -> list[TopicPartition]:
    # Topics nobody marks go back with any loss: the broker lost them too, most likely.
    return [tp for tp in consumer.assignment() if tp.topic in moved or tp.topic not in marked]


async def follow_broker_epoch(
    kafka: KafkaSettings,
    consumers: Callable[[], Iterable[GroupConsumer]],
    interval: float = FOLLOW_INTERVAL_SECONDS,
) -> None:
    """Runs until cancelled: rewinds the consumers onto a broker that lost what it held (see
    above); the first look at once, so that the epoch the process runs on is known early."""
    follower = EpochFollower()
    marks = EpochMarks(kafka, ())
    while True:
        current = list(consumers())
        # Subscribed, not only assigned: a consumer still joining its group learns the
        # epoch it is on too, so that the next one is a change to it.
        topics = {t for _, consumer in current for t in consumer.subscription()}
        try:
            seen = await marks.read(topics) if topics else {}
        except (KafkaError, OSError):
            seen = None  # the broker is away: nothing to rewind onto
        if seen is not None:
            moved = follower.changed(seen)
            marked = {t for t, mark in seen.items() if mark is not None}
            if await _rewind_all(current, moved, marked):
                follower.settle(seen)
        await asyncio.sleep(interval)


async def _rewind_all(
    consumers: Sequence[GroupConsumer], moved: set[str], marked: set[str]
) -> bool:
    """Rewinds what changed epoch, and whatever sits past the end of its log; False when a
    consumer could not be rewound now (a second rewind only re-reads)."""
    done = True
    for group, consumer in consumers:
        if not_on_the_broker(consumer):
            log.info("group %s is not rewound before it joins the new broker's partitions", group)
            done = False
            continue
        try:
            partitions = set(await beyond_the_end(consumer))
            if moved:
                partitions |= set(_to_rewind(consumer, moved, marked))
            if partitions:
                await rewind(consumer, sorted(partitions))
        except (KafkaError, AssertionError, TimeoutError) as error:
            # Rebalancing meanwhile: the partitions' next owner starts from what the group
            # committed, which this rewind may not have reached yet.
            log.warning("group %s not rewound onto the new broker yet: %s", group, error)
            done = False
            continue
        if partitions:
            log.warning(
                "the broker lost what group %s read (%s): its %d partitions there are read "
                "again from the start of the new log",
                group,
                ", ".join(sorted({tp.topic for tp in partitions})),
                len(partitions),
            )
    return done

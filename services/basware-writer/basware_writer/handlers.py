"""The writer's handlers: a consumed batch of change events, and a follow-up round's
outcomes, both ending as result events on the results topic.

A batch's offsets are committed once it is safe: its result events are acknowledged by Kafka,
and whatever has no result yet is in PostgreSQL (pending requests, claimed uploads, parked
changes), where the follow-up of any writer instance finishes it. When publishing fails, or
the database is unreachable, the batch is rewound and taken again (Basware upserts are
idempotent, uploads are claimed once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from faststream.kafka import KafkaMessage

from basware_writer.backoff import BATCH_DEADLINE
from basware_writer.domain import Outcomes, fan_out
from basware_writer.executor import TenantExecutor
from basware_writer.lifecycle import DATABASE_DOWN, WriterLifecycle
from basware_writer.metrics import BATCH_SECONDS, MALFORMED, RESULTS
from basware_writer.settings import WriterSettings
from basware_writer.verdicts import failed
from mlconnector.contracts import (
    CHANGE_EVENTS,
    ChangeEvent,
    DeliveryResult,
    MalformedMessage,
    Outcome,
)
from mlconnector.kafka import UnreadableMessage, decode_batch

log = logging.getLogger("basware_writer")

REWIND_PAUSE_SECONDS = 1.0

Publish = Callable[[Sequence[DeliveryResult | MalformedMessage]], Awaitable[None]]

# What a commit refused because the group rebalanced (this writer's partitions moved) says.
REBALANCED = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)


def unreadable(message: UnreadableMessage) -> MalformedMessage:
    """A message that is no change event: counted, logged by field (never by value), and
    answered with a MalformedMessage, which the audit log shows as a state of its own (or as
    the `malformed` state of the record its body names). The raw message stays in the log,
    replayable by offset range once its producer is fixed."""
    MALFORMED.inc()
    log.error(
        "message %s[%d]@%d is not a change event, not delivered (kept in the audit log): %s",
        message.topic,
        message.partition,
        message.offset,
        message.reason,
    )
    return message.malformed()


def log_results(results: Sequence[DeliveryResult], what: str, seconds: float | None) -> None:
    summary: defaultdict[str, int] = defaultdict(int)
    for result in results:
        RESULTS.labels(result.tenant, result.entity.value, result.outcome.value).inc()
        summary[result.outcome.value] += 1
        if result.outcome is Outcome.REJECTED:
            log.warning(
                "rejected %s %s/%s: %s",
                result.tenant,
                result.entity.value,
                result.entity_id,
                "; ".join(r.message for r in result.reasons),
            )
    if results:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.items()))
        if seconds is None:
            log.info("%s: %s", what, counts)
        else:
            log.info("%s: %s in %.2f s", what, counts, seconds)


async def results_of(executor: TenantExecutor, outcomes: Outcomes) -> list[DeliveryResult]:
    region = await executor.region()
    return [d.result(region) for d in outcomes.deliveries]


@dataclass
class TenantAnswer:
    """One tenant's part of a batch: its results, and the executor to settle with."""

    results: list[DeliveryResult]
    executor: TenantExecutor | None = None
    outcomes: Outcomes = field(default_factory=Outcomes)


def log_uncommitted(error: KafkaError, seconds: float, poll_interval_ms: int) -> None:
    """A batch's offsets were refused: said as a rebalance when it is one."""
    if isinstance(error, REBALANCED):
        log.warning(
            "the consumer group rebalanced while a batch ran (%.1f s, poll interval %.0f s): "
            "its offsets are not committed and the writer that holds its partitions now takes "
            "it again, finding what this one did in PostgreSQL (%s)",
            seconds,
            poll_interval_ms / 1000,
            type(error).__name__,
        )
    else:
        log.warning("offsets of a batch not committed (%s); it is taken again", error)


class WriterHandlers:
    def __init__(
        self, lifecycle: WriterLifecycle, publish: Publish, settings: WriterSettings
    ) -> None:
        self._lifecycle = lifecycle
        self._publish = publish
        self._settings = settings

    async def on_follow_up(self, executor: TenantExecutor, outcomes: Outcomes) -> None:
        results = await results_of(executor, outcomes)
        await self._publish(results)
        log_results(results, f"follow-up of {executor.tenant}", None)

    async def on_changes(self, message: KafkaMessage) -> None:
        started = time.monotonic()
        # Every retry of this batch ends by then, so the batch ends within the poll interval.
        BATCH_DEADLINE.set(started + self._settings.retry_horizon_seconds)
        records: tuple[ConsumerRecord[bytes, bytes], ...] = message.raw_message
        by_tenant: dict[str, list[ChangeEvent]] = defaultdict(list)
        decoded = decode_batch(records, CHANGE_EVENTS)
        malformed = [unreadable(m) for m in decoded.unreadable]
        for event in decoded.events:
            by_tenant[event.tenant].append(event)
        answers = await asyncio.gather(
            *(self._deliver(tenant, batch) for tenant, batch in by_tenant.items()),
            return_exceptions=True,
        )
        delivered = [a for a in answers if not isinstance(a, BaseException)]
        try:
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            results = [result for a in delivered for result in a.results]
            await self._publish([*results, *malformed])
        except Exception:
            log.exception("batch of %d changes not finished; it will be taken again", len(records))
            await self._let_go(delivered)
            await message.nack()
            await asyncio.sleep(REWIND_PAUSE_SECONDS)
            return
        await self._let_go(delivered)
        try:
            await message.ack()
        except KafkaError as exc:
            # The partitions moved to another writer meanwhile: it takes the batch again and
            # finds what this one did in PostgreSQL (nothing is posted or uploaded twice).
            seconds = time.monotonic() - started
            log_uncommitted(exc, seconds, self._settings.max_poll_interval_ms())
        BATCH_SECONDS.observe(time.monotonic() - started)
        log_results(results, f"batch of {len(records)} changes", time.monotonic() - started)
        if any(a.outcomes.release for a in delivered):
            self._lifecycle.follow_up.wake()

    async def _deliver(self, tenant: str, batch: Sequence[ChangeEvent]) -> TenantAnswer:
        executor = await self._lifecycle.tenants.executor(tenant)
        if executor is None:
            verdict = failed(
                f"no connection is configured for Visma company {tenant}",
                attempts=0,
                category="Configuration",
            )
            return TenantAnswer(results=[d.result(None) for d in fan_out(batch, verdict)])
        try:
            outcomes = await executor.deliver(batch)
        except DATABASE_DOWN:
            raise
        except Exception as exc:
            # A bug or an outage here must not loop on the batch nor lose it: every change
            # becomes a failed result, visible and replayable.
            log.exception("delivering %d changes of %s failed", len(batch), tenant)
            verdict = failed(f"internal error: {type(exc).__name__}", attempts=1)
            return TenantAnswer(results=[d.result(None) for d in fan_out(batch, verdict)])
        return TenantAnswer(
            results=await results_of(executor, outcomes), executor=executor, outcomes=outcomes
        )

    async def _let_go(self, delivered: Sequence[TenantAnswer]) -> None:
        for answer in delivered:
            if answer.executor is not None:
                with contextlib.suppress(*DATABASE_DOWN):
                    await answer.executor.let_go(answer.outcomes)

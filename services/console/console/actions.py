"""Operators' actions into the audit log, through an outbox.

An action is written to `console_outbox` right after the change it records (or with it,
in one transaction, where the change is the console's own) and published to the
operator.actions topic by `OutboxPublisher`; audit-store keeps it like every message. So
an action is audited even when Kafka is down at that moment, and published once it is back.
The event's id is fixed when written: a second publication is dropped by audit-store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, TypeAlias

import asyncpg
from aiokafka.errors import KafkaError
from asyncpg.pool import PoolConnectionProxy

from console.producer import EventProducer
from mlconnector.contracts import Entity, OperatorAction
from mlconnector.topics import Topic

log = logging.getLogger(__name__)

PUBLISH_BATCH = 100
RETRY_SECONDS = 2.0

# asyncpg is generic only in its stubs: the alias stays a string at runtime.
Db: TypeAlias = "asyncpg.Pool | asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def operator_action(
    actor: str,
    action: str,
    *,
    role: str | None = None,
    tenant: str | None = None,
    target: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
    succeeded: bool = True,
    entity: Entity | None = None,
    entity_id: str | None = None,
) -> OperatorAction:
    return OperatorAction(
        event_id=str(uuid.uuid4()),
        tenant=tenant or "",
        actor=actor,
        role=role,
        action=action,
        target=target,
        reason=reason,
        detail=detail,
        succeeded=succeeded,
        entity=entity,
        entity_id=entity_id,
    )


async def record_action(db: Db, action: OperatorAction) -> None:
    await db.execute(
        "INSERT INTO console_outbox (event_id, payload) VALUES ($1, $2)",
        action.event_id,
        action.model_dump_json(),
    )


class OutboxPublisher:
    """Publishes what the outbox holds, oldest first; woken by `nudge` after a write."""

    def __init__(
        self, pool: asyncpg.Pool, producer: EventProducer, topic: str = Topic.OPERATOR_ACTIONS
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        rows = await self._pool.fetch(
            "SELECT seq, payload FROM console_outbox WHERE published_at IS NULL"
            " ORDER BY seq LIMIT $1",
            PUBLISH_BATCH,
        )
        for row in rows:
            await self._producer.send(
                self._topic, OperatorAction.model_validate_json(row["payload"])
            )
            await self._pool.execute(
                "UPDATE console_outbox SET published_at = now() WHERE seq = $1", row["seq"]
            )
        return len(rows)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.publish_pending() == PUBLISH_BATCH:
                    pass
                timeout = RETRY_SECONDS
            except (KafkaError, OSError, asyncpg.PostgresError) as error:
                log.warning("operator actions wait for the broker: %s", error)
                timeout = RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

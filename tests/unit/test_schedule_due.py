"""Which (connection, entity) polls are due: what visma-reader asks on every cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlconnector.connections import (
    ALL_ENTITIES,
    Connection,
    EnvConnectionSource,
    due_entities,
    due_polls,
    next_poll_at,
)
from mlconnector.contracts import REFERENCE_ENTITIES, Entity
from mlconnector.schedule import CronSchedule, IntervalSchedule

NOW = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)
DEFAULT = IntervalSchedule(seconds=60)
ENV = {
    "VISMA_CLIENT_ID": "client",
    "VISMA_CLIENT_SECRET": "s",
    "VISMA_TENANT_ID": "tenant",
    "VISMA_COMPANY_ID": "1000001",
    "BASWARE_CLIENT_ID": "bw",
    "BASWARE_CLIENT_SECRET": "s",
    "MLC_CONNECTION_NAME": "acme",
    "MLC_SCHEDULE_SUPPLIER": "10s",
    "MLC_SCHEDULE_SUPPLIER_INVOICE": "cron:0 * * * *",
}


async def acme() -> Connection:
    [connection] = await EnvConnectionSource(ENV).list()
    return connection


async def test_everything_is_due_before_the_first_poll() -> None:
    connection = await acme()
    assert due_entities(connection, {}, NOW, DEFAULT) == list(ALL_ENTITIES)


async def test_each_entity_follows_its_own_schedule_or_the_default() -> None:
    connection = await acme()
    last = {
        **{("acme", e): NOW for e in REFERENCE_ENTITIES},  # default 60s: not yet
        ("acme", Entity.SUPPLIER): NOW - timedelta(seconds=11),  # every 10s: due
        ("acme", Entity.PURCHASE_ORDER): NOW - timedelta(seconds=30),  # default 60s: not yet
        ("acme", Entity.SUPPLIER_INVOICE): NOW - timedelta(minutes=5),  # hourly at :00: not yet
    }
    assert due_entities(connection, last, NOW, DEFAULT) == [Entity.SUPPLIER]
    assert next_poll_at(connection, last, NOW, DEFAULT) == NOW - timedelta(seconds=1)
    last[("acme", Entity.SUPPLIER)] = NOW
    assert next_poll_at(connection, last, NOW, DEFAULT) == NOW + timedelta(seconds=10)


async def test_entities_the_connection_does_not_sync_are_never_due() -> None:
    connection = (await acme()).model_copy(update={"entities": (Entity.SUPPLIER_INVOICE,)})
    assert due_entities(connection, {}, NOW, DEFAULT) == [Entity.SUPPLIER_INVOICE]
    assert next_poll_at(connection.model_copy(update={"entities": ()}), {}, NOW, DEFAULT) is None


async def test_due_polls_reads_the_source_on_every_call() -> None:
    class Changing:
        def __init__(self, connection: Connection) -> None:
            self.connection = connection

        async def list(self) -> list[Connection]:
            return [self.connection]

        async def get(self, name: str) -> Connection:
            return self.connection

    source = Changing(await acme())
    last = {("acme", e): NOW - timedelta(seconds=40) for e in Entity}
    assert [(p.connection.name, p.entity) for p in await due_polls(source, NOW, last, DEFAULT)] == [
        ("acme", Entity.SUPPLIER)
    ]
    # `mlconnector connections schedule acme purchase_order --cron "* * * * *"`, no restart:
    source.connection = source.connection.model_copy(
        update={
            "schedules": {
                **source.connection.schedules,
                Entity.PURCHASE_ORDER: CronSchedule(expression="* * * * *"),
            }
        }
    )
    due = await due_polls(source, NOW, last, DEFAULT)
    assert [p.entity for p in due] == [Entity.SUPPLIER, Entity.PURCHASE_ORDER]

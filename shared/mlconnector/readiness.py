"""`/readyz`: a service is ready only when its broker, its database and its own main loop are.

`/healthz` answers "is the process there"; `/readyz` answers "is it doing its work", which is
what `mlconnector status`, an orchestrator's readiness probe and a load balancer ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer
from faststream.asgi import AsgiResponse, get
from faststream.asgi.handlers import GetHandler
from faststream.asgi.types import Scope
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

PROBE_TIMEOUT_SECONDS = 2.0
OK = "ok"


class NotReady(Exception):
    """Raised by a probe; its message says what is missing, in a few words."""


Probe = Callable[[], Awaitable[None]]


class ReadinessReport(BaseModel):
    ready: bool
    # Each probe's name, and "ok" or what is wrong.
    checks: dict[str, str]


class Readiness:
    """The probes of one service; the broker's is always there."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker
        self._probes: dict[str, Probe] = {"broker": self._broker_answers}

    def add(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe

    async def report(self) -> ReadinessReport:
        names = list(self._probes)
        outcomes = await asyncio.gather(*(self._run(self._probes[n]) for n in names))
        checks = dict(zip(names, outcomes, strict=True))
        return ReadinessReport(ready=all(v == OK for v in checks.values()), checks=checks)

    async def _run(self, probe: Probe) -> str:
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
        except NotReady as missing:
            return str(missing)
        except TimeoutError:
            return f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s"
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return OK

    async def _broker_answers(self) -> None:
        if not await self._broker.ping(PROBE_TIMEOUT_SECONDS):
            raise NotReady("the broker does not answer")
        for subscriber in self._broker.subscribers:
            topics = ", ".join(str(name) for name in getattr(subscriber, "topic_names", ()))
            if not subscriber.running:
                raise NotReady(f"the consumer of {topics} is not running")
            tasks: list[asyncio.Task[None]] = getattr(subscriber, "tasks", [])
            if any(task.done() for task in tasks):
                raise NotReady(f"the consumer of {topics} stopped")
            consumer = getattr(subscriber, "consumer", None)
            if isinstance(consumer, AIOKafkaConsumer) and not consumer.assignment():
                # Joining or rebalancing: it reads nothing until the group gives it partitions
                # (a member beyond the partition count stays so, idle).
                raise NotReady(f"the consumer of {topics} has no partitions assigned yet")

    def asgi(self) -> GetHandler:
        @get(include_in_schema=False)
        async def readyz(scope: Scope) -> AsgiResponse:
            report = await self.report()
            return AsgiResponse(
                report.model_dump_json().encode(),
                200 if report.ready else 503,
                headers={"content-type": "application/json"},
            )

        return readyz


def database_probe(pool: Callable[[], asyncpg.Pool | None]) -> Probe:
    """Ready when the service's pool (opened at start-up) answers a query."""

    async def probe() -> None:
        current = pool()
        if current is None:
            raise NotReady("the database pool is not open yet")
        await current.fetchval("SELECT 1")

    return probe


def tasks_probe(what: str, tasks: Callable[[], Iterable[asyncio.Task[None]] | None]) -> Probe:
    """Ready while the service's own loops run: started (`tasks` gives None before), and
    none of them ended."""

    async def probe() -> None:
        found = tasks()
        if found is None:
            raise NotReady(f"{what} has not started")
        running = list(found)
        ended = [t.get_name() for t in running if t.done()]
        if ended:
            raise NotReady(f"{what} stopped: {', '.join(ended)}")

    return probe

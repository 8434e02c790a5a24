"""The console's app: wiring only. Pages and API routes live in pages/, policy in access.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app

from console.actions import OutboxPublisher
from console.pages import audit, connections, login, overview, ping, records, replay, users
from console.producer import EventProducer
from console.sampler import Sampler
from console.settings import ConsoleSettings
from console.users import migrate
from console.web import ConsoleState, Refused, answer_refusal, refuse_cross_site
from mlconnector.connection_store import ConnectionStore
from mlconnector.readiness import ReadinessReport
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring, VaultError

API_DESCRIPTION = (
    "Everything the console's pages show, as JSON. Log in with POST /api/session; it sets "
    "the session cookie and answers a CSRF token, which every write sends back as the "
    "X-CSRF-Token header. Roles: viewer reads; operator also pings, replays, changes "
    "schedules and verifies the log; admin also manages connections and users."
)
# Every page module, each with its router of HTML and API routes.
PAGES = (login, overview, connections, ping, records, replay, audit, users)
# No script, style or frame from anywhere but the console itself.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def create_app(
    settings: ConsoleSettings | None = None,
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    keyring: Keyring | None = None,
    changes_topic: str = Topic.VISMA_CHANGES.value,
) -> FastAPI:
    """The console; `changes_topic` is where replays and re-derived codings are sent."""
    settings = settings or ConsoleSettings()
    kafka = kafka or KafkaSettings()
    database = database or DatabaseSettings()
    tasks: list[asyncio.Task[None]] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keyring_problem = None
        found = keyring
        if found is None:
            try:
                found = Keyring.from_env()
            except VaultError as error:
                keyring_problem = str(error)
        pool = await asyncpg.create_pool(database.database_url, min_size=1, max_size=8)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await ConnectionStore.migrate(conn)
            producer = EventProducer(kafka)
            outbox = OutboxPublisher(pool, producer)
            state = ConsoleState(
                settings, kafka, pool, producer, outbox, found, keyring_problem, changes_topic
            )
            app.state.console = state
            sampler = Sampler(pool, state.services, settings.sample_seconds)
            tasks.append(asyncio.create_task(outbox.run(), name="outbox"))
            tasks.append(asyncio.create_task(sampler.run(), name="sampler"))
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks.clear()
            if hasattr(app.state, "console"):
                await app.state.console.producer.stop()
            await pool.close()

    app = FastAPI(
        title="ml-connector console",
        description=API_DESCRIPTION,
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.mount("/metrics", make_asgi_app())
    for module in PAGES:
        app.include_router(module.router)

    @app.exception_handler(Refused)
    async def refused(request: Request, refusal: Refused) -> Response:
        return answer_refusal(request, refusal)

    @app.exception_handler(asyncpg.UndefinedTableError)
    async def no_log_yet(request: Request, error: asyncpg.UndefinedTableError) -> Response:
        return answer_refusal(
            request,
            Refused(503, "no audit log yet: audit-store has not run against this database"),
        )

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = refuse_cross_site(request) or await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await request.app.state.console.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            checks["database"] = type(error).__name__
        for task in tasks:
            checks[task.get_name()] = "stopped" if task.done() else "ok"
        report = ReadinessReport(ready=all(v == "ok" for v in checks.values()), checks=checks)
        return Response(
            report.model_dump_json(), 200 if report.ready else 503, media_type="application/json"
        )

    return app

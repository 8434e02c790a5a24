"""What every page and API route shares: the console's state, who is asking (login, role,
CSRF), and how a refusal or a mistake is answered (JSON under /api, a page elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from console.access import Role, allows, cross_site, tokens_match
from console.actions import Db, OutboxPublisher, record_action
from console.producer import EventProducer
from console.settings import ConsoleSettings
from console.users import LoginPolicy, Session, find_session
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import ALL_ENTITIES
from mlconnector.contracts import OperatorAction
from mlconnector.home import HomeFolder, StackEndpoint, StackFileUnreadable, read_stack_file
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring

SESSION_COOKIE = "mlc_session"
LOGIN_CSRF_COOKIE = "mlc_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class Problem(BaseModel):
    """What the API answers when it refuses or cannot do something."""

    detail: str


class Notice(BaseModel):
    """What the API answers after a write that has nothing else to return."""

    detail: str


class ConsoleState:
    """Everything a request needs, opened once by the app's lifespan."""

    def __init__(
        self,
        settings: ConsoleSettings,
        kafka: KafkaSettings,
        pool: asyncpg.Pool,
        producer: EventProducer,
        outbox: OutboxPublisher,
        keyring: Keyring | None,
        keyring_problem: str | None = None,
        changes_topic: str = Topic.VISMA_CHANGES.value,
    ) -> None:
        self.settings = settings
        self.changes_topic = changes_topic
        self.keyring = keyring
        self.keyring_problem = keyring_problem
        self.kafka = kafka
        self.pool = pool
        self.producer = producer
        self.outbox = outbox
        self.policy = LoginPolicy(
            allowed_failures=settings.lockout_failures,
            lockout_minutes=settings.lockout_minutes,
            idle_minutes=settings.session_idle_minutes,
        )

    def connections(self) -> ConnectionStore:
        """The connection store; refused with the reason while no master key is set."""
        if self.keyring is None:
            raise Refused(503, f"the connection store cannot be opened: {self.keyring_problem}")
        return ConnectionStore(self.pool, self.keyring)

    def services(self) -> list[StackEndpoint]:
        """The services to watch: configured, else those of the local stack's stack.json."""
        if self.settings.services is not None:
            return self.settings.services
        try:
            stack = read_stack_file(HomeFolder.from_env())
        except StackFileUnreadable:
            return []
        return stack.services if stack else []

    async def audit(self, action: OperatorAction) -> None:
        await self.audit_in(self.pool, action)

    async def audit_in(self, db: Db, action: OperatorAction) -> None:
        """Writes the action to the outbox through `db` (a transaction, when the action is
        a change to the console's own tables) and wakes the publisher."""
        await record_action(db, action)
        self.outbox.nudge()


def state_of(request: Request) -> ConsoleState:
    found: ConsoleState = request.app.state.console
    return found


def now() -> datetime:
    return datetime.now(UTC)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


class Refused(Exception):
    """A request the console will not serve: not logged in, role too low, CSRF missing."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BadInput(Refused):
    """A request whose input is wrong; its message says what, and nothing changed."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


def bad_input(what: str, error: ValidationError) -> BadInput:
    """pydantic's complaints about a form or query, in a line, without repeating the input
    (which may be a secret)."""
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False, include_context=False)
    )
    return BadInput(f"{what}: {problems}")


class NotLoggedIn(Refused):
    def __init__(self) -> None:
        super().__init__(401, "log in first")


async def _csrf_given(request: Request) -> str | None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return given


class Access:
    """The dependency of every route but login: the session, if its role suffices; and on
    every write, the session's CSRF token (form field or X-CSRF-Token header)."""

    def __init__(self, needed: Role) -> None:
        self.needed = needed

    async def __call__(self, request: Request) -> Session:
        state = state_of(request)
        token = request.cookies.get(SESSION_COOKIE)
        session = await find_session(state.pool, token, now(), state.policy) if token else None
        if session is None:
            raise NotLoggedIn()
        if not allows(session.user.role, self.needed):
            raise Refused(
                403,
                f"this needs the {self.needed.value} role; {session.user.name} is "
                f"{session.user.role.value}",
            )
        if request.method not in SAFE_METHODS and not tokens_match(
            session.csrf_token, await _csrf_given(request)
        ):
            raise Refused(403, "the form is stale or was not sent by this console: reload it")
        request.state.session = session
        return session


def refuse_cross_site(request: Request) -> Response | None:
    """A write a browser sent from another site is refused before anything reads it."""
    if request.method in SAFE_METHODS:
        return None
    if cross_site(
        request.headers.get("origin"),
        request.headers.get("sec-fetch-site"),
        request.headers.get("host"),
    ):
        return answer_refusal(request, Refused(403, "a request from another site is refused"))
    return None


def answer_refusal(request: Request, refusal: Refused) -> Response:
    if wants_json(request):
        return JSONResponse(Problem(detail=refusal.detail).model_dump(), refusal.status)
    if isinstance(refusal, NotLoggedIn):
        target = request.url.path if request.method in SAFE_METHODS else "/"
        return RedirectResponse(f"/login?next={target}", 303)
    return page(request, "refused.html", {"detail": refusal.detail}, status=refusal.status)


def page(
    request: Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> HTMLResponse:
    session: Session | None = getattr(request.state, "session", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf_token": session.csrf_token if session else "",
            "roles": Role,
            **context,
        },
        status_code=status,
    )


def may(session: Session | None, role: Role) -> bool:
    return session is not None and allows(session.user.role, role)


templates.env.globals["may"] = may
# What a connection can sync, in dependency order (the new-connection form's checkboxes).
templates.env.globals["all_entities"] = [entity.value for entity in ALL_ENTITIES]

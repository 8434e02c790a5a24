"""The console in-process on a free port, its users, and a client that logs in as one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from audit_store.lifecycle import migrate as migrate_audit_log
from console.access import Role
from console.app import create_app
from console.settings import ConsoleSettings
from console.users import add_user
from console.users import migrate as migrate_console
from mlconnector.asgi import serve_asgi
from mlconnector.home import StackEndpoint
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring, MasterKey

PASSWORD = "correct horse battery"
# One user of each role, named after it.
USERS = {role: role.value for role in Role}


def console_keyring() -> Keyring:
    return Keyring(MasterKey.from_bytes(bytes(range(32))))


async def add_users(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate_console(conn)
        for role, name in USERS.items():
            await add_user(conn, name, role, SecretStr(PASSWORD))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running_console(
    database_url: str,
    kafka: KafkaSettings,
    *,
    services: list[StackEndpoint] | None = None,
    keyring: Keyring | None = None,
    changes_topic: str = Topic.VISMA_CHANGES.value,
    **settings: Any,
) -> AsyncIterator[str]:
    """The console on a free loopback port, its database holding the audit log and a user
    of each role; yields its base URL."""
    await migrate_audit_log(database_url)
    await add_users(database_url)
    app = create_app(
        # httpx sends Secure cookies only over HTTPS: these tests speak plain HTTP.
        ConsoleSettings(secure_cookies=False, services=services or [], **settings),
        kafka,
        DatabaseSettings(database_url=database_url),
        keyring or console_keyring(),
        changes_topic,
    )
    async with serve_asgi(app) as url:
        yield url


class ConsoleClient:
    """An HTTP client with the console's cookies; after `log_in`, every write carries the
    login's CSRF token as the API expects."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)
        self.csrf = ""

    async def __aenter__(self) -> ConsoleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def log_in(self, name: str, password: str = PASSWORD) -> httpx.Response:
        answer = await self.http.post("/api/session", json={"name": name, "password": password})
        if answer.status_code == 200:
            self.csrf = answer.json()["csrf_token"]
        return answer

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"x-csrf-token": self.csrf, **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

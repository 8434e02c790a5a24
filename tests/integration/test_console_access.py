"""The console refuses whoever may not: anonymous users and too-low roles on every page and
API route, cross-site and token-less writes, repeated wrong passwords; bad input changes
nothing. On the real database, the console served over HTTP."""

from __future__ import annotations

import re

import pytest
from console_support import PASSWORD, USERS, ConsoleClient, console_keyring, running_console
from fastapi.routing import APIRoute
from pydantic import SecretStr

from console.access import Role
from console.app import PAGES, create_app
from console.web import Access
from mlconnector.basware import BaswareCredentials, BaswareRegion
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import ALL_ENTITIES, Connection
from mlconnector.settings import KafkaSettings
from mlconnector.visma import VismaCredentials

pytestmark = pytest.mark.integration

# The only routes anybody may call: logging in, and the probes of an orchestrator.
OPEN_ROUTES = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/api/session"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
LOWER = {Role.OPERATOR: [Role.VIEWER], Role.ADMIN: [Role.VIEWER, Role.OPERATOR]}
PATH_VALUES = {"name": "demo", "entity": "supplier", "entity_id": "50001"}


def guarded_routes() -> list[tuple[str, str, Role]]:
    """(method, path, role needed) for every route of the app, read from its dependencies."""
    found: list[tuple[str, str, Role]] = []
    routes = [*create_app().routes, *(r for module in PAGES for r in module.router.routes)]
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        needed = [d.call.needed for d in route.dependant.dependencies if isinstance(d.call, Access)]
        for method in route.methods or ():
            if (method, route.path) in OPEN_ROUTES:
                assert not needed
                continue
            assert len(needed) == 1, f"{method} {route.path} has no Access dependency"
            path = re.sub(r"\{(\w+)(:path)?\}", lambda m: PATH_VALUES[m[1]], route.path)
            found.append((method, path, needed[0]))
    return found


def demo_connection() -> Connection:
    return Connection(
        name="demo",
        visma=VismaCredentials(
            client_id="visma-client",
            client_secret=SecretStr("visma-secret-value"),
            tenant_id="tenant",
            company_id="1000001",
        ),
        basware=BaswareCredentials(
            client_id="basware-client",
            client_secret=SecretStr("basware-secret-value"),
            region=BaswareRegion.EU,
        ),
    )


async def store_demo(database_url: str) -> None:
    async with ConnectionStore.open(database_url, console_keyring()) as store:
        await store.add(demo_connection())


async def is_enabled(database_url: str) -> bool:
    async with ConnectionStore.open(database_url, console_keyring()) as store:
        return (await store.get("demo")).enabled


def test_every_role_guards_some_routes() -> None:
    roles = {role for _, _, role in guarded_routes()}
    assert roles == set(Role)


async def test_every_route_refuses_anonymous_users_and_lower_roles(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    async with running_console(database_url, kafka_settings) as url:
        await store_demo(database_url)
        async with ConnectionClients(url) as clients:
            for method, path, needed in guarded_routes():
                anonymous = await clients.anonymous.request(method, path, json={})
                if path.startswith("/api/"):
                    assert anonymous.status_code == 401, (method, path, anonymous.text)
                else:
                    assert anonymous.status_code == 303, (method, path)
                    assert anonymous.headers["location"].startswith("/login")
                for role in LOWER.get(needed, []):
                    refused = await clients.by_role[role].request(method, path, json={})
                    assert refused.status_code == 403, (method, path, role, refused.text)
                    assert needed.value in refused.text
        assert await is_enabled(database_url)


class ConnectionClients:
    """An anonymous client and one logged in per role."""

    def __init__(self, url: str) -> None:
        self.anonymous = ConsoleClient(url)
        self.by_role = {role: ConsoleClient(url) for role in Role}

    async def __aenter__(self) -> ConnectionClients:
        for role, client in self.by_role.items():
            assert (await client.log_in(USERS[role])).status_code == 200
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in [self.anonymous, *self.by_role.values()]:
            await client.__aexit__()


async def test_a_cross_site_or_token_less_form_post_is_refused_and_changes_nothing(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    async with running_console(database_url, kafka_settings) as url:
        await store_demo(database_url)
        async with ConsoleClient(url) as admin:
            await admin.log_in(USERS[Role.ADMIN])
            form = {"enabled": "false", "csrf_token": admin.csrf}
            cross_site = await admin.http.post(
                "/connections/demo/enabled", data=form, headers={"origin": "http://evil.example"}
            )
            assert cross_site.status_code == 403
            assert "another site" in cross_site.text
            fetched = await admin.http.post(
                "/connections/demo/enabled", data=form, headers={"sec-fetch-site": "cross-site"}
            )
            assert fetched.status_code == 403
            tokenless = await admin.http.post(
                "/connections/demo/enabled", data={"enabled": "false"}
            )
            assert tokenless.status_code == 403
            assert "stale" in tokenless.text
            assert await is_enabled(database_url)
            same_site = await admin.http.post(
                "/connections/demo/enabled", data=form, headers={"origin": url}
            )
            assert same_site.status_code == 303
            assert not await is_enabled(database_url)


async def test_repeated_wrong_passwords_lock_the_user_out(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    async with (
        running_console(database_url, kafka_settings, lockout_failures=3) as url,
        ConsoleClient(url) as client,
    ):
        for _ in range(2):
            wrong = await client.log_in(USERS[Role.VIEWER], "not the password")
            assert wrong.status_code == 401
            assert "wrong user name or password" in wrong.text
        assert (await client.log_in(USERS[Role.VIEWER], "not the password")).status_code == 401
        locked = await client.log_in(USERS[Role.VIEWER], PASSWORD)
        assert locked.status_code == 401
        assert "locked out" in locked.text
        assert (await client.log_in(USERS[Role.OPERATOR], PASSWORD)).status_code == 200


async def test_bad_input_is_said_plainly_and_changes_nothing(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    async with running_console(database_url, kafka_settings) as url, ConsoleClient(url) as admin:
        await store_demo(database_url)
        await admin.log_in(USERS[Role.ADMIN])
        bad = await admin.request(
            "PUT", "/api/connections/demo/schedules", json={"entity": "supplier", "every": "5x"}
        )
        assert bad.status_code == 400
        assert "not an interval" in bad.json()["detail"]
        page = await admin.http.post(
            "/connections/demo/schedule",
            data={"csrf_token": admin.csrf, "entity": "supplier", "mode": "cron", "value": "* *"},
        )
        assert page.status_code == 400
        assert "not a cron expression" in page.text
        shown = (await admin.request("GET", "/api/connections/demo")).json()
        assert [s["schedule"] for s in shown["schedules"]] == [None] * len(ALL_ENTITIES)
        nothing = await admin.request(
            "POST", "/api/replay", json={"selection": {"kind": "failed"}, "dry_run": True}
        )
        assert nothing.status_code == 400
        assert "nothing to replay" in nothing.json()["detail"]
        no_reason = await admin.request(
            "POST", "/api/replay", json={"selection": {"kind": "failed"}, "dry_run": False}
        )
        assert no_reason.status_code == 400
        assert "reason" in no_reason.json()["detail"]

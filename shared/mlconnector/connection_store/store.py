"""The connection store in PostgreSQL: settings as JSON, secrets sealed by the vault.

A connection is split on the way in: every SecretStr field (wherever the client models put
one) is sealed into its own `connection_secrets` row, bound to the connection's id and the
field's path; everything else is JSON in `connections.settings`; schedules have their own
table so that `update_schedule` touches nothing else. Reading joins the three back into a
`Connection` and needs the master key; nothing in the database is readable without it.

A running service reads secrets that `mlconnector keys rotate` re-sealed under a key it did
not load at start: a secret sealed under a key the keyring lacks makes the store load the
keyring again (`reload`, which re-reads MLC_MASTER_KEY_FILE) before it opens anything, so a
master key rotation needs no restart (docs/operator-guide.md §8.1).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from mlconnector.connections import Connection, ConnectionInvalid, ConnectionNotFound
from mlconnector.contracts import Entity
from mlconnector.mapping import CodingLayout
from mlconnector.migrations import apply_migrations
from mlconnector.schedule import CronSchedule, IntervalSchedule
from mlconnector.vault import Keyring, SealedSecret, SecretSlot, VaultError

MIGRATIONS_PACKAGE = "mlconnector.connection_store"
MIGRATIONS_OWNER = "connections"
# The secrets of a Connection are the SecretStr fields outside these.
_COLUMNS = {"name", "schedules"}


# What reading connections raises when the store cannot be read right now: the database
# does not answer, a secret needs a master key not loaded, a stored row does not validate.
READ_FAILURES: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    VaultError,
    ConnectionInvalid,
)


class ConnectionExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a connection named {name!r} already exists")
        self.name = name


class RotationReport(BaseModel):
    current_key_id: str
    resealed: int
    already_current: int


def split_secrets(connection: Connection) -> tuple[dict[str, Any], dict[str, SecretStr]]:
    """The connection's settings without secrets (JSON-ready), and its secrets by field path."""
    data = connection.model_dump(mode="python", by_alias=False, exclude=_COLUMNS)
    secrets: dict[str, SecretStr] = {}

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for key in list(node):
            value = node[key]
            if isinstance(value, SecretStr):
                secrets[".".join((*path, key))] = node.pop(key)
            elif isinstance(value, dict):
                walk(value, (*path, key))

    walk(data, ())
    settings: dict[str, Any] = to_jsonable_python(data)
    return settings, secrets


def join_secrets(
    name: str,
    settings: dict[str, Any],
    secrets: dict[str, SecretStr],
    schedules: dict[Entity, IntervalSchedule | CronSchedule],
) -> Connection:
    data: dict[str, Any] = {**settings, "name": name, "schedules": schedules}
    for path, secret in secrets.items():
        *parents, field = path.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        node[field] = secret  # still a SecretStr: even a validation error shows it masked
    try:
        return Connection.model_validate(data, by_name=True)
    except ValidationError as error:
        raise ConnectionInvalid.from_validation(
            f"stored connection {name!r} does not validate", error
        ) from None


def _schedule_columns(schedule: IntervalSchedule | CronSchedule) -> tuple[float | None, str | None]:
    if isinstance(schedule, IntervalSchedule):
        return schedule.seconds, None
    return None, schedule.expression


def _schedule_of(row: asyncpg.Record) -> IntervalSchedule | CronSchedule:
    if row["cron"] is not None:
        return CronSchedule(expression=row["cron"])
    return IntervalSchedule(seconds=row["interval_seconds"])


def _slot(connection_id: uuid.UUID, field: str) -> SecretSlot:
    return SecretSlot(owner=str(connection_id), field=field)


KeyringLoader = Callable[[], Keyring]


class ConnectionStore:
    """Typed access to the stored connections. Reads open secrets with the keyring, loaded
    again by `reload` when a secret is sealed under a key it does not hold."""

    def __init__(
        self, pool: asyncpg.Pool, keyring: Keyring, reload: KeyringLoader | None = None
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._reload = reload

    def __repr__(self) -> str:
        return f"ConnectionStore(keyring={self._keyring!r})"

    @staticmethod
    async def migrate(conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any]) -> list[str]:
        return await apply_migrations(conn, MIGRATIONS_PACKAGE, owner=MIGRATIONS_OWNER)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, database_url: str, keyring: Keyring, reload: KeyringLoader | None = None
    ) -> AsyncIterator[ConnectionStore]:
        """A store on its own small pool, with its tables migrated."""
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        try:
            conn = await asyncpg.connect(database_url)
            try:
                await cls.migrate(conn)
            finally:
                await conn.close()
            yield cls(pool, keyring, reload)
        finally:
            await pool.close()

    async def add(self, connection: Connection) -> None:
        settings, secrets = split_secrets(connection)
        connection_id = uuid.uuid4()
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO connections (id, name, tenant, settings) VALUES ($1, $2, $3, $4)",
                    connection_id,
                    connection.name,
                    connection.tenant,
                    json.dumps(settings),
                )
            except asyncpg.UniqueViolationError:
                raise ConnectionExists(connection.name) from None
            await conn.executemany(
                "INSERT INTO connection_secrets (connection_id, field, key_id, nonce, ciphertext)"
                " VALUES ($1, $2, $3, $4, $5)",
                [
                    (connection_id, field, sealed.key_id, sealed.nonce, sealed.ciphertext)
                    for field, secret in secrets.items()
                    for sealed in [self._keyring.seal(secret, _slot(connection_id, field))]
                ],
            )
            await conn.executemany(
                "INSERT INTO connection_schedules (connection_id, entity, interval_seconds, cron)"
                " VALUES ($1, $2, $3, $4)",
                [
                    (connection_id, entity.value, *_schedule_columns(schedule))
                    for entity, schedule in connection.schedules.items()
                ],
            )

    async def list(self) -> Sequence[Connection]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, name, settings FROM connections ORDER BY name")
            return await _assemble(conn, self._keyring_for, rows)

    async def get(self, name: str) -> Connection:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, name, settings FROM connections WHERE name = $1", name
            )
            if not rows:
                raise ConnectionNotFound(name)
            return (await _assemble(conn, self._keyring_for, rows))[0]

    def _keyring_for(self, key_ids: set[str]) -> Keyring:
        """A keyring that holds `key_ids`, if loading it again brings them; the secrets of a
        key still missing then fail to open, naming the key."""
        if self._reload is not None and not key_ids <= set(self._keyring.key_ids):
            self._keyring = self._reload()
        return self._keyring

    async def remove(self, name: str) -> None:
        async with self._pool.acquire() as conn:
            status = await conn.execute("DELETE FROM connections WHERE name = $1", name)
        if status == "DELETE 0":
            raise ConnectionNotFound(name)

    async def set_enabled(self, name: str, enabled: bool) -> Connection:
        """Enables or disables polling of a connection; nothing else changes."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE connections SET updated_at = now(),"
                " settings = jsonb_set(settings, '{enabled}', to_jsonb($2::boolean))"
                " WHERE name = $1",
                name,
                enabled,
            )
        if status == "UPDATE 0":
            raise ConnectionNotFound(name)
        return await self.get(name)

    async def update_coding(self, name: str, coding: CodingLayout) -> tuple[Connection, Connection]:
        """Sets a connection's coding layout; the connection before and after."""
        before = await self.get(name)
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE connections SET updated_at = now(),"
                " settings = jsonb_set(settings, '{coding}', $2::jsonb) WHERE name = $1",
                name,
                coding.model_dump_json(),
            )
        if status == "UPDATE 0":
            raise ConnectionNotFound(name)
        return before, await self.get(name)

    async def update_schedule(
        self, name: str, entity: Entity, schedule: IntervalSchedule | CronSchedule | None
    ) -> Connection:
        """Sets (or, with None, clears back to the default) one entity's poll schedule."""
        async with self._pool.acquire() as conn, conn.transaction():
            connection_id = await conn.fetchval(
                "SELECT id FROM connections WHERE name = $1 FOR UPDATE", name
            )
            if connection_id is None:
                raise ConnectionNotFound(name)
            if schedule is None:
                await conn.execute(
                    "DELETE FROM connection_schedules WHERE connection_id = $1 AND entity = $2",
                    connection_id,
                    entity.value,
                )
            else:
                await conn.execute(
                    "INSERT INTO connection_schedules"
                    " (connection_id, entity, interval_seconds, cron) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (connection_id, entity) DO UPDATE SET"
                    " interval_seconds = EXCLUDED.interval_seconds, cron = EXCLUDED.cron,"
                    " updated_at = now()",
                    connection_id,
                    entity.value,
                    *_schedule_columns(schedule),
                )
            await conn.execute(
                "UPDATE connections SET updated_at = now() WHERE id = $1", connection_id
            )
        return await self.get(name)

    async def rotate_keys(self) -> RotationReport:
        """Re-seals every secret not under the current key; one transaction, all or nothing."""
        current = self._keyring.current.key_id
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT connection_id, field, key_id, nonce, ciphertext FROM connection_secrets"
                " WHERE key_id <> $1 FOR UPDATE",
                current,
            )
            resealed = [(row["connection_id"], row["field"], self._reseal(row)) for row in rows]
            await conn.executemany(
                "UPDATE connection_secrets SET key_id = $3, nonce = $4, ciphertext = $5"
                " WHERE connection_id = $1 AND field = $2",
                [(cid, field, s.key_id, s.nonce, s.ciphertext) for cid, field, s in resealed],
            )
            total = await conn.fetchval("SELECT count(*) FROM connection_secrets")
        return RotationReport(
            current_key_id=current, resealed=len(resealed), already_current=total - len(resealed)
        )

    async def key_usage(self) -> dict[str, int]:
        """How many secrets each master key seals (a key with none can be retired)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT key_id, count(*) AS secrets FROM connection_secrets GROUP BY key_id"
            )
        return {row["key_id"]: row["secrets"] for row in rows}

    def _reseal(self, row: asyncpg.Record) -> SealedSecret:
        return self._keyring.reseal(_sealed(row), _slot(row["connection_id"], row["field"]))


def _sealed(row: asyncpg.Record) -> SealedSecret:
    return SealedSecret(key_id=row["key_id"], nonce=row["nonce"], ciphertext=row["ciphertext"])


async def _assemble(
    conn: PoolConnectionProxy[asyncpg.Record],
    keyring_for: Callable[[set[str]], Keyring],
    rows: Iterable[asyncpg.Record],
) -> list[Connection]:
    rows = list(rows)
    ids = [row["id"] for row in rows]
    secrets: dict[uuid.UUID, dict[str, SecretStr]] = {i: {} for i in ids}
    sealed_rows = await conn.fetch(
        "SELECT connection_id, field, key_id, nonce, ciphertext FROM connection_secrets"
        " WHERE connection_id = ANY($1::uuid[])",
        ids,
    )
    keyring = keyring_for({row["key_id"] for row in sealed_rows})
    for row in sealed_rows:
        slot = _slot(row["connection_id"], row["field"])
        secrets[row["connection_id"]][row["field"]] = keyring.open(_sealed(row), slot)
    schedules: dict[uuid.UUID, dict[Entity, IntervalSchedule | CronSchedule]] = {i: {} for i in ids}
    for row in await conn.fetch(
        "SELECT connection_id, entity, interval_seconds, cron FROM connection_schedules"
        " WHERE connection_id = ANY($1::uuid[])",
        ids,
    ):
        schedules[row["connection_id"]][Entity(row["entity"])] = _schedule_of(row)
    return [
        join_secrets(
            row["name"], json.loads(row["settings"]), secrets[row["id"]], schedules[row["id"]]
        )
        for row in rows
    ]


async def connection_names(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any],
) -> dict[str, str]:
    """Connection name per tenant, read without opening a secret (no master key needed)."""
    if await conn.fetchval("SELECT to_regclass('connections') IS NULL"):
        return {}
    rows = await conn.fetch("SELECT tenant, name FROM connections ORDER BY name")
    return {row["tenant"]: row["name"] for row in rows}

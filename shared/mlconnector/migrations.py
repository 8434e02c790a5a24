"""Versioned SQL migrations, applied at start by the service that owns the tables.

Each service keeps `migrations/NNN_name.sql` in its package. Files are applied in order,
each once, inside a transaction, under an advisory lock so that several instances starting
together do not race. A fresh database and an upgraded one end in the same schema. The
checksum covers the statements, not the comments: a comment may be corrected (a citation
moved into docs/, say), a statement never.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    owner      text        NOT NULL,
    version    text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, version)
)
"""


MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"mlconnector-migrations").digest()[:8], "big", signed=True
)


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(\$\w*\$).*?\1", re.S)
_COMMENT = re.compile(r"--[^\n]*")


def statements_of(sql: str) -> str:
    """The SQL without its `--` comments (quoted text and dollar-quoted bodies kept whole):
    what a migration does, so that correcting a comment never changes its checksum."""
    kept: list[str] = []
    position = 0
    for quoted in _QUOTED.finditer(sql):
        kept.append(_COMMENT.sub("", sql[position : quoted.start()]))
        kept.append(quoted.group(0))
        position = quoted.end()
    kept.append(_COMMENT.sub("", sql[position:]))
    return "\n".join(line.rstrip() for line in "".join(kept).splitlines() if line.strip())


def checksum_of(sql: str) -> str:
    return hashlib.sha256(statements_of(sql).encode()).hexdigest()


def _legacy_checksum(sql: str) -> str:
    # What databases migrated before comments were left out recorded: the whole file.
    return hashlib.sha256(sql.encode()).hexdigest()


# Files whose comments were corrected after databases recorded their whole text: the
# checksum those databases hold. Statements are never corrected this way.
CORRECTED_COMMENTS: dict[tuple[str, str], str] = {
    # A citation moved into docs/.
    ("visma-reader", "001_poll_state"): (
        "c7cc4dd5ea093f53686791a58a872eb115baf5a198c954c204151117638c9e63"
    ),
}


class MigrationChanged(RuntimeError):
    """An applied migration file was edited afterwards: history must be appended, not rewritten."""


class MigrationsPending(RuntimeError):
    """Migrations are due and the database role in use may not apply them (a service's own
    least-privilege role): the owner applies them first (`mlconnector database setup`)."""


MigrationFile = tuple[str, str]  # version, sql


def migration_files(package: str) -> list[MigrationFile]:
    files = sorted(
        (
            f
            for f in resources.files(package).joinpath("migrations").iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in files]


def _pending(owner: str, files: list[MigrationFile], done: dict[str, str]) -> list[MigrationFile]:
    """The files not applied yet; MigrationChanged for one applied and edited since."""
    pending: list[MigrationFile] = []
    for version, sql in files:
        if version not in done:
            pending.append((version, sql))
            continue
        accepted = {
            checksum_of(sql),
            _legacy_checksum(sql),
            CORRECTED_COMMENTS.get((owner, version)),
        }
        if done[version] not in accepted:
            raise MigrationChanged(f"{owner} migration {version} changed after it was applied")
    return pending


async def _applied(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any], owner: str
) -> dict[str, str]:
    return {
        row["version"]: row["checksum"]
        for row in await conn.fetch(
            "SELECT version, checksum FROM schema_migrations WHERE owner = $1", owner
        )
    }


async def apply_migrations(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any], package: str, owner: str
) -> list[str]:
    """Applies the package's pending migrations; returns the versions applied now."""
    files = migration_files(package)
    # Nothing due: no lock and no DDL, so a service's role, which may read the ledger but
    # create nothing, starts on a database its owner migrated (docs/operator-guide.md §10.1).
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL") and not (
        _pending(owner, files, await _applied(conn, owner))
    ):
        return []
    applied_now: list[str] = []
    # One lock for every owner: services starting together share the ledger table, and two
    # concurrent CREATE TABLE IF NOT EXISTS of it can still collide in PostgreSQL's catalog.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_LEDGER)
        for version, sql in _pending(owner, files, await _applied(conn, owner)):
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (owner, version, checksum) VALUES ($1, $2, $3)",
                    owner,
                    version,
                    checksum_of(sql),
                )
            applied_now.append(version)
    except asyncpg.InsufficientPrivilegeError as error:
        raise MigrationsPending(
            f"{owner} has migrations to apply and its database role may not apply them "
            f"({error}): run `mlconnector database setup` as the database's administrator"
        ) from error
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now

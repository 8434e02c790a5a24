"""Versioned SQL migrations, applied at start by the service that owns the tables.

Each service keeps `migrations/NNN_name.sql` in its package. Files are applied in order,
each once, inside a transaction, under an advisory lock so that several instances starting
together do not race. A fresh database and an upgraded one end in the same schema.
"""

from __future__ import annotations

import hashlib
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


class MigrationChanged(RuntimeError):
    """An applied migration file was edited afterwards: history must be appended, not rewritten."""


async def apply_migrations(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any], package: str, owner: str
) -> list[str]:
    """Applies the package's pending migrations; returns the versions applied now."""
    files = sorted(
        (
            f
            for f in resources.files(package).joinpath("migrations").iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    applied_now: list[str] = []
    # One lock for every owner: services starting together share the ledger table, and two
    # concurrent CREATE TABLE IF NOT EXISTS of it can still collide in PostgreSQL's catalog.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_LEDGER)
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch(
                "SELECT version, checksum FROM schema_migrations WHERE owner = $1", owner
            )
        }
        for file in files:
            sql = file.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            version = file.name.removesuffix(".sql")
            if version in done:
                if done[version] != checksum:
                    raise MigrationChanged(
                        f"{owner} migration {version} changed after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (owner, version, checksum) VALUES ($1, $2, $3)",
                    owner,
                    version,
                    checksum,
                )
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now

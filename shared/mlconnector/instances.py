"""Liveness of a service's instances: each running instance beats a row of its own in its
service's table (`instance` primary key, `seen_at`), and leaves it when it stops cleanly.

What the rows decide is the service's: basware-writer honours the claims of instances that
beat lately, visma-reader counts its live readers to cap each one's share of the leases.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# Rows of instances gone this long are forgotten (whatever they held was free long before).
FORGET_AFTER_SECONDS = 86_400.0

# The tables of instance rows, one per service (granted to that service's role alone).
InstanceTable = Literal["writer_instances", "visma_reader_instance"]
Session: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


class InstanceBeats:
    def __init__(self, table: InstanceTable, instance: str) -> None:
        self.table = table
        self.instance = instance

    async def beat(self, conn: Session) -> None:
        """This instance is alive now; rows of long-gone instances go."""
        await conn.execute(
            f"INSERT INTO {self.table} (instance) VALUES ($1)"  # noqa: S608 (a fixed name)
            " ON CONFLICT (instance) DO UPDATE SET seen_at = now()",
            self.instance,
        )
        await conn.execute(
            f"DELETE FROM {self.table}"  # noqa: S608 (a fixed name)
            " WHERE seen_at < now() - make_interval(secs => $1)",
            FORGET_AFTER_SECONDS,
        )

    async def leave(self, conn: Session) -> None:
        """A clean stop: this instance counts no more."""
        await conn.execute(
            f"DELETE FROM {self.table} WHERE instance = $1",  # noqa: S608 (a fixed name)
            self.instance,
        )

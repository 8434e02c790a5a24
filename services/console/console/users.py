"""The console's users and their logins in PostgreSQL (tables in migrations/001_console.sql)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel, Field, SecretStr

from console.access import Role, locked_out, lockout_after
from console.passwords import hash_password, verify_password
from mlconnector.migrations import apply_migrations

MIGRATIONS_PACKAGE = "console"
MIGRATIONS_OWNER = "console"

UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$")]
# asyncpg is generic only in its stubs: the alias stays a string at runtime.
Db: TypeAlias = "asyncpg.Pool | asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


async def migrate(conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any]) -> list[str]:
    return await apply_migrations(conn, MIGRATIONS_PACKAGE, owner=MIGRATIONS_OWNER)


class UserExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a user named {name!r} already exists")


class UserNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no user named {name!r}")


class User(BaseModel):
    name: str
    role: Role
    locked_until: datetime | None = None
    created_at: datetime


class Session(BaseModel):
    """A login: who, and the CSRF token every write of this login must carry."""

    user: User
    csrf_token: str


class LoginRefusal(StrEnum):
    WRONG = "wrong user name or password"
    LOCKED = "too many wrong passwords: this user is locked out for a while"


class LoginResult(BaseModel):
    user: User | None = None
    refusal: LoginRefusal | None = None
    # Set when this very failure locked the user out.
    locked_until: datetime | None = None


class LoginPolicy(BaseModel):
    allowed_failures: int
    lockout_minutes: float
    idle_minutes: float


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def add_user(db: Db, name: str, role: Role, password: SecretStr) -> User:
    hashed = hash_password(password)
    try:
        row = await db.fetchrow(
            "INSERT INTO console_users (name, role, password_hash) VALUES ($1, $2, $3)"
            " RETURNING name, role, locked_until, created_at",
            name,
            role.value,
            hashed,
        )
    except asyncpg.UniqueViolationError:
        raise UserExists(name) from None
    assert row is not None
    return User.model_validate(dict(row))


async def list_users(db: Db) -> list[User]:
    rows = await db.fetch(
        "SELECT name, role, locked_until, created_at FROM console_users ORDER BY name"
    )
    return [User.model_validate(dict(r)) for r in rows]


async def remove_user(db: Db, name: str) -> None:
    if await db.execute("DELETE FROM console_users WHERE name = $1", name) == "DELETE 0":
        raise UserNotFound(name)


async def count_admins(db: Db) -> int:
    found: int = await db.fetchval("SELECT count(*) FROM console_users WHERE role = 'admin'")
    return found


async def log_in(
    pool: asyncpg.Pool, name: str, password: SecretStr, now: datetime, policy: LoginPolicy
) -> LoginResult:
    """Checks the password, counting failures; a locked-out user is refused unchecked."""
    row = await pool.fetchrow(
        "SELECT name, role, password_hash, failed_logins, locked_until, created_at"
        " FROM console_users WHERE name = $1",
        name,
    )
    if row is not None and locked_out(row["locked_until"], now):
        return LoginResult(refusal=LoginRefusal.LOCKED)
    matched = verify_password(row["password_hash"] if row else None, password)
    if row is None:
        return LoginResult(refusal=LoginRefusal.WRONG)
    if not matched:
        failures = row["failed_logins"] + 1
        until = lockout_after(
            failures, now, allowed=policy.allowed_failures, minutes=policy.lockout_minutes
        )
        await pool.execute(
            "UPDATE console_users SET failed_logins = $2, locked_until = $3 WHERE name = $1",
            name,
            0 if until else failures,
            until,
        )
        return LoginResult(
            refusal=LoginRefusal.LOCKED if until else LoginRefusal.WRONG, locked_until=until
        )
    await pool.execute(
        "UPDATE console_users SET failed_logins = 0, locked_until = NULL WHERE name = $1", name
    )
    return LoginResult(
        user=User(name=row["name"], role=Role(row["role"]), created_at=row["created_at"])
    )


async def open_session(pool: asyncpg.Pool, user: User) -> tuple[str, Session]:
    """A new login: the token for the cookie, and the session it stands for."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO console_sessions (token_hash, user_name, csrf_token) VALUES ($1, $2, $3)",
        _token_hash(token),
        user.name,
        csrf,
    )
    return token, Session(user=user, csrf_token=csrf)


async def find_session(
    pool: asyncpg.Pool, token: str, now: datetime, policy: LoginPolicy
) -> Session | None:
    """The session of a cookie's token while it is in use; an idle one ends."""
    row = await pool.fetchrow(
        """
        UPDATE console_sessions s SET last_seen = $2
        FROM console_users u
        WHERE s.token_hash = $1 AND u.name = s.user_name AND s.last_seen > $3
        RETURNING u.name, u.role, u.locked_until, u.created_at, s.csrf_token
        """,
        _token_hash(token),
        now,
        now - timedelta(minutes=policy.idle_minutes),
    )
    if row is None:
        return None
    user = User(name=row["name"], role=Role(row["role"]), created_at=row["created_at"])
    return Session(user=user, csrf_token=row["csrf_token"])


async def close_session(pool: asyncpg.Pool, token: str) -> None:
    await pool.execute("DELETE FROM console_sessions WHERE token_hash = $1", _token_hash(token))

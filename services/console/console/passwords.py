"""Password hashing with argon2id, a memory-hard KDF (RFC 9106's second recommended
parameter set: 64 MiB, 3 passes), so a stolen users table is slow to guess from."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import SecretStr

_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)

MIN_PASSWORD_LENGTH = 10


class WeakPassword(ValueError):
    """A password the console refuses to set; the message never repeats it."""


def check_strength(password: SecretStr) -> None:
    if len(password.get_secret_value()) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: SecretStr) -> str:
    check_strength(password)
    return _HASHER.hash(password.get_secret_value())


@functools.cache
def _decoy_hash() -> str:
    return _HASHER.hash("a password nobody has")


def verify_password(stored_hash: str | None, password: SecretStr) -> bool:
    """Whether the password matches. Without a stored hash (no such user) the same work is
    done against a decoy, so the answer's time does not tell which user names exist."""
    try:
        _HASHER.verify(stored_hash or _decoy_hash(), password.get_secret_value())
    except (VerificationError, InvalidHashError):
        return False
    return stored_hash is not None

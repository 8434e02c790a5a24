"""Checkpoints: the chain heads, signed with a key the database never holds, kept outside it.

A database superuser can rewrite a whole chain and its head consistently, or delete a chain
and its head: the hashes in the database then agree with each other. What they cannot do is
change what was written elsewhere, signed under a key derived from the master key. So
audit-store appends, every interval, the heads of every chain to a file (one JSON object per
line, `AUDIT_STORE_CHECKPOINT_FILE`), each line signed (HMAC-SHA256, docs/architecture.md §6);
`audit verify` checks the log against the latest checkpoint whose signature holds: every
chain it names still exists, reaches its position, and has the very hash there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.audit.stored import Connection
from mlconnector.home import HomeFolder
from mlconnector.vault import Keyring, VaultError

log = logging.getLogger(__name__)

SIGNING_PURPOSE = "audit-checkpoint/v1"
CHECKPOINT_FILE_NAME = "audit-checkpoints.jsonl"


class CheckpointSettings(BaseSettings):
    """AUDIT_STORE_CHECKPOINT_*: read by audit-store, which writes, and by verify, which reads."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_STORE_", extra="ignore")

    # Unset: the home folder's file (MLC_HOME, default .mlconnector/).
    checkpoint_file: Path | None = None
    checkpoint_interval_seconds: float = Field(default=60.0, gt=0)

    def checkpoints_path(self) -> Path:
        return self.checkpoint_file or HomeFolder.from_env().root / CHECKPOINT_FILE_NAME


class CheckpointHead(BaseModel):
    topic: str
    partition: int
    position: int
    row_hash: str  # hex


class Checkpoint(BaseModel):
    taken_at: datetime
    heads: list[CheckpointHead]
    key_id: str
    signature: str

    def signed_content(self) -> bytes:
        return signed_content(self.taken_at, self.heads)


def signed_content(taken_at: datetime, heads: list[CheckpointHead]) -> bytes:
    ordered = sorted(heads, key=lambda h: (h.topic, h.partition))
    return json.dumps(
        {"taken_at": taken_at.isoformat(), "heads": [h.model_dump() for h in ordered]},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def sign_checkpoint(
    heads: list[CheckpointHead], keyring: Keyring, taken_at: datetime
) -> Checkpoint:
    key_id, signature = keyring.sign(SIGNING_PURPOSE, signed_content(taken_at, heads))
    return Checkpoint(taken_at=taken_at, heads=heads, key_id=key_id, signature=signature)


async def current_heads(conn: Connection) -> list[CheckpointHead]:
    rows = await conn.fetch(
        "SELECT topic, kafka_partition, chain_position, row_hash FROM audit_chain_head"
        " ORDER BY topic, kafka_partition"
    )
    return [
        CheckpointHead(
            topic=r["topic"],
            partition=r["kafka_partition"],
            position=r["chain_position"],
            row_hash=bytes(r["row_hash"]).hex(),
        )
        for r in rows
    ]


class CheckpointFile:
    """An append-only file of checkpoints, one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = checkpoint.model_dump_json() + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def checkpoints(self) -> list[Checkpoint]:
        """Every readable line, oldest first; a torn or edited line is left out (and verify
        says so when it was the last)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        found: list[Checkpoint] = []
        for line in lines:
            with contextlib.suppress(ValidationError, ValueError):
                found.append(Checkpoint.model_validate_json(line))
        return found


class CheckpointVerdict(BaseModel):
    """The checkpoint verify trusts, or why there is none."""

    checkpoint: Checkpoint | None
    # Something wrong with the checkpoints themselves (forged, unsigned): a verify failure.
    problem: str | None = None
    # Why they could not be checked at all (no master key loaded): said, not a failure.
    unchecked: str | None = None


def latest_valid(file: CheckpointFile, keyring: Keyring) -> CheckpointVerdict:
    """The newest checkpoint whose signature holds. A newer one that does not hold is a
    problem in itself: someone wrote it without the key."""
    found = file.checkpoints()
    if not found:
        return CheckpointVerdict(checkpoint=None)
    forged: list[str] = []
    for checkpoint in reversed(found):
        try:
            valid = keyring.signature_valid(
                SIGNING_PURPOSE,
                checkpoint.signed_content(),
                checkpoint.key_id,
                checkpoint.signature,
            )
        except VaultError as error:
            return CheckpointVerdict(checkpoint=None, unchecked=str(error))
        if valid:
            problem = (
                f"{len(forged)} newer checkpoint(s) in {file.path} are not signed by the "
                f"master key (the first taken at {forged[-1]})"
                if forged
                else None
            )
            return CheckpointVerdict(checkpoint=checkpoint, problem=problem)
        forged.append(checkpoint.taken_at.isoformat())
    return CheckpointVerdict(
        checkpoint=None, problem=f"no checkpoint in {file.path} is signed by the master key"
    )


class Checkpointer:
    """Signs and appends the heads every interval, when they moved, and once more at stop."""

    def __init__(
        self, pool: asyncpg.Pool, file: CheckpointFile, keyring: Keyring, interval: float
    ) -> None:
        self._pool = pool
        self._file = file
        self._keyring = keyring
        self._interval = interval
        self._last: list[CheckpointHead] | None = None

    async def take(self) -> Checkpoint | None:
        """A new checkpoint, or None when no head moved since the last one."""
        async with self._pool.acquire() as conn:
            heads = await current_heads(conn)
        if heads == self._last:
            return None
        checkpoint = sign_checkpoint(heads, self._keyring, datetime.now(UTC))
        await asyncio.to_thread(self._file.append, checkpoint)
        self._last = heads
        return checkpoint

    async def run(self) -> None:
        while True:
            try:
                await self.take()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # The next round tries again; a verify meanwhile checks the older checkpoint.
                log.warning("audit checkpoint not written: %s", error)
            await asyncio.sleep(self._interval)

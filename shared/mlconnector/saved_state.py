"""Keeping a sandbox's state in a file across restarts: atomic writes and debounced saving.

The sandboxes use it for `--state-dir`. A state is written whole, as one document: to a
temporary file beside the target, fsynced, renamed over the target, the directory fsynced.
A restart, even after SIGKILL, finds the previous document or the new one, never a torn one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

from pydantic import SecretStr, SerializationInfo, SerializerFunctionWrapHandler, WrapSerializer
from starlette.types import ASGIApp, Receive, Scope, Send

# At most this long between a change and its save: what a SIGKILL can lose.
SAVE_INTERVAL_SECONDS = 1.0
# The serialization context of a saved state: the one place secrets are written out.
SAVED_STATE_CONTEXT = "saved-state"


def _revealed_when_saved(
    value: SecretStr, handler: SerializerFunctionWrapHandler, info: SerializationInfo
) -> object:
    if info.context == SAVED_STATE_CONTEXT:
        return value.get_secret_value()
    return handler(value)


# A secret masked in every answer and log as SecretStr is, but kept by a saved state: a
# restored webhook subscription must still sign with its secret.
SavedSecretStr = Annotated[SecretStr, WrapSerializer(_revealed_when_saved)]


def write_atomically(path: Path, data: bytes) -> None:
    """Replaces `path` with `data`, readable by the owner only (a saved state holds secrets)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class StateSaver:
    """Saves `snapshot()` to `path` whenever `revision()` has moved on since the last save.

    The revision is checked every `interval` seconds, so saving costs nothing while nothing
    changes and a burst of writes is saved once. The snapshot is taken in the event loop (a
    consistent state); the write and fsync run in a thread.
    """

    def __init__(
        self,
        path: Path,
        snapshot: Callable[[], bytes],
        revision: Callable[[], int],
        *,
        interval: float = SAVE_INTERVAL_SECONDS,
    ) -> None:
        self.path = path
        self._snapshot = snapshot
        self._revision = revision
        self._interval = interval
        self._saved_revision: int | None = None

    async def save(self) -> None:
        revision = self._revision()
        data = self._snapshot()
        await asyncio.to_thread(write_atomically, self.path, data)
        self._saved_revision = revision

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Saves now, after changes while the block runs, and one last time when it ends."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self.save()
        stopping = asyncio.Event()
        saving = asyncio.create_task(self._save_changes(stopping))
        try:
            yield
        finally:
            # Stopped, not cancelled: a save under way finishes before the last one starts.
            stopping.set()
            await saving
            await self.save()

    async def _save_changes(self, stopping: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.wait_for(stopping.wait(), self._interval)
            except TimeoutError:
                if self._revision() != self._saved_revision:
                    await self.save()
            else:
                return


class AfterEachRequest:
    """ASGI middleware: calls `after` once each HTTP request has been answered.

    A sandbox counts every request as a change: even a read adds to its request log.
    """

    def __init__(self, app: ASGIApp, after: Callable[[], None]) -> None:
        self._app = app
        self._after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            self._after()

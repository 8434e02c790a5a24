"""Lets a broker recovery run while no poll is under way (recovery.py).

The recovery drops "published" marks and moves cursors back. A poll that read some pages
before that and advanced its cursor after would carry the cursor past the records whose marks
were dropped, and they would not be read again. So the recovery closes the gate: a poll
between two pages stops there (PollInterrupted: its cursor stays where it was, as after a
crash), new polls wait, and the recovery starts once no poll is left. The gate starts closed:
the first polls of a process wait for its first look at the broker, so that a recovery at
start (a database that outlived its broker) never races the polls it would stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class PollInterrupted(Exception):
    """A poll stopped between two pages because the gate closed; it starts again from its
    cursor once the gate opens."""


class PollGate:
    def __init__(self, *, open_at_start: bool = False) -> None:
        self._open = asyncio.Event()
        if open_at_start:
            self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._polls = 0

    @contextlib.asynccontextmanager
    async def passage(self) -> AsyncIterator[None]:
        """Around one poll: waits while the gate is closed."""
        await self._open.wait()
        self._polls += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._polls -= 1
            if not self._polls:
                self._idle.set()

    def check(self) -> None:
        """Between two pages of a poll: PollInterrupted when the gate is closing."""
        if not self._open.is_set():
            raise PollInterrupted("a broker recovery is waiting for the polls to stop")

    def open(self) -> None:
        self._open.set()

    @contextlib.asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """No poll runs inside; polls under way stop at their next page."""
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()

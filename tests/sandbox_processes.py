"""A sandbox's console command run as a real process: started until it says it serves,
stopped by a signal, its output kept for the assertions."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path


class SandboxProcess:
    def __init__(self, process: asyncio.subprocess.Process, output: str) -> None:
        self._process = process
        self.output = output  # what it printed until it was serving, then until it ended

    async def stop(self, stop_signal: signal.Signals) -> int:
        """Sends `stop_signal` and waits for the exit; the exit status."""
        self._process.send_signal(stop_signal)
        async with asyncio.timeout(30):
            rest, _ = await self._process.communicate()
        self.output += rest.decode(errors="replace")
        assert self._process.returncode is not None
        return self._process.returncode

    @property
    def running(self) -> bool:
        return self._process.returncode is None


@contextlib.asynccontextmanager
async def sandbox_process(
    command: str, *args: str, serving: str, cwd: Path | None = None
) -> AsyncIterator[SandboxProcess]:
    """Runs `command` (a console script beside this Python) until it prints `serving`; kills
    it on the way out if the test did not stop it."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / command),
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not printed or serving not in printed[-1]:
                line = await process.stdout.readline()
                if not line:
                    raise AssertionError(f"{command} ended before serving:\n{''.join(printed)}")
                printed.append(line.decode(errors="replace"))
        running = SandboxProcess(process, "".join(printed))
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()

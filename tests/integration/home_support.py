"""`mlconnector run` as a user starts it: a process in a folder of its own, whose home folder
lasts, on ports of its own; and the commands a user types beside it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import BaseModel

from mlconnector.asgi import listening_ports
from mlconnector.home import HomeFolder, StackFile, read_stack_file

MLCONNECTOR = Path(sys.executable).parent / "mlconnector"
# What a user's shell would not have: nothing of the project's own configuration.
PROJECT_PREFIXES = ("MLC_", "KAFKA_", "DATABASE_", "VISMA_", "BASWARE_")


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_PREFIXES)}


def port_settings() -> dict[str, str]:
    """A free block for every port of one stack, so a test never meets a developer's stack."""
    block = listening_ports(40)
    return {
        "MLC_PORT_GATEWAY": str(block),
        "MLC_PORT_VISMA_READER": str(block + 1),
        "MLC_PORT_BASWARE_WRITER": str(block + 2),
        "MLC_PORT_AUDIT_STORE": str(block + 3),
        "MLC_PORT_BROKER": str(block + 4),
        "MLC_PORT_INVOICE_FOLLOW_UP": str(block + 5),
        "MLC_PORT_CONSOLE": str(block + 6),
        "MLC_PORT_RECONCILER": str(block + 7),
        "MLC_PORT_MORE_WRITERS": str(block + 10),
        "MLC_PORT_VISMA_SANDBOX": str(block + 20),
        "MLC_PORT_BASWARE_SANDBOX": str(block + 30),
    }


class CommandResult(BaseModel):
    code: int
    stdout: str
    stderr: str


async def mlconnector(folder: Path, *args: str, stdin: bytes | None = None) -> CommandResult:
    """One CLI command in `folder`, with a user's environment: no project variable set."""
    process = await asyncio.create_subprocess_exec(
        str(MLCONNECTOR),
        *args,
        cwd=folder,
        env=clean_environment(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=120)
    assert process.returncode is not None
    return CommandResult(code=process.returncode, stdout=out.decode(), stderr=err.decode())


class RunningStack:
    """One `mlconnector run` process in `folder`; its home is `folder/.mlconnector`."""

    def __init__(self, folder: Path, ports: dict[str, str], *args: str) -> None:
        self.folder = folder
        self.home = HomeFolder(root=(folder / ".mlconnector").absolute())
        self._env = {**clean_environment(), **ports}
        self._args = args
        self._process: asyncio.subprocess.Process | None = None
        self.output = ""
        self.seconds_to_ready = 0.0

    async def start(self, timeout: float = 90.0) -> StackFile:
        """Starts it and waits for its stack file: every service answers by then."""
        started = time.monotonic()
        self._process = await asyncio.create_subprocess_exec(
            str(MLCONNECTOR),
            "run",
            *self._args,
            cwd=self.folder,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        while True:
            found = read_stack_file(self.home)
            if found is not None and found.pid == self._process.pid:
                self.seconds_to_ready = time.monotonic() - started
                return found
            if self._process.returncode is not None or time.monotonic() - started > timeout:
                out = await self._process.stdout.read() if self._process.stdout else b""
                raise AssertionError(f"the stack did not come up:\n{out.decode()}")
            await asyncio.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a user stops it; returns its exit code and keeps what it printed."""
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(self._process.communicate(), timeout=timeout)
        self.output = out.decode(errors="replace")
        assert self._process.returncode is not None
        return self._process.returncode

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


async def until(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.25)

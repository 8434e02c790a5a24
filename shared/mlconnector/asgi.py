"""Serving an ASGI app with uvicorn inside the current event loop, on a loopback port.

Used by the webhook gateway, by the sandboxes when a test runs them in-process, and by the
benchmarks. Port 0 binds a free port; the bound URL is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def listening_ports(count: int = 1, host: str = "127.0.0.1", attempts: int = 100) -> int:
    """The first of `count` consecutive free ports for servers started later (by another
    process, say), below the kernel's ephemeral range.

    `free_port()` picks from the ephemeral range, where every outgoing connection takes its
    local port: a port picked now and bound seconds later can be gone by then. Below the
    range, only another listener can take it.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(attempts):
        first = random.randint(max(1024, low // 2), low - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((host, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return first
    raise OSError(f"no {count} consecutive free ports below {low} on {host}")


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> AsyncIterator[str]:
    """Runs `app` until the block exits; yields its base URL (no trailing slash)."""
    # IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on
    # sockets whose proto says TCP. Without it every response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raises why the server could not start
            await asyncio.sleep(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()

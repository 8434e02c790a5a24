"""Serving an ASGI app with uvicorn: inside the current event loop on a loopback port
(`serve_asgi`: the gateway in tests, the sandboxes in-process, the benchmarks; port 0 binds a
free port and the bound URL is returned), and the limits an edge facing the internet needs.

uvicorn's h11 server times out only an idle keep-alive connection: a client that sends its
request headers one byte at a time, or opens connections and sends nothing complete, holds
them for ever, and `limit_concurrency` answers 503 only once a whole request arrived.
`ServerLimits` closes that gap with a protocol that caps open connections at accept and gives
every request's headers a deadline (the body's deadline is the app's: the gateway's receiver).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import h11
import uvicorn
from pydantic import BaseModel, ConfigDict, Field
from uvicorn.protocols.http.h11_impl import H11Protocol


class ServerLimits(BaseModel):
    """How long a request's headers may take, how many connections may be open at once, how
    long an idle keep-alive connection stays, and how large the request headers may be."""

    model_config = ConfigDict(frozen=True)

    header_timeout: timedelta = timedelta(seconds=10)
    max_connections: int = Field(default=256, ge=1)
    keep_alive_timeout: timedelta = timedelta(seconds=5)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "http": guarded_protocol(self),
            "timeout_keep_alive": max(1, round(self.keep_alive_timeout.total_seconds())),
            "h11_max_incomplete_event_size": self.max_header_bytes,
        }


def guarded_protocol(limits: ServerLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with `limits.max_connections` and `limits.header_timeout`."""

    class GuardedH11Protocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= limits.max_connections:
                self._refused = True
                transport.close()  # never served: cheaper than a 503 to a flood
                return
            super().connection_made(transport)
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._headers_arrived()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._headers_arrived()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()  # a keep-alive connection's next request

        def _await_headers(self) -> None:
            self._headers_arrived()
            seconds = limits.header_timeout.total_seconds()
            self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

        def _headers_arrived(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol


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
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    limits: ServerLimits | None = None,
) -> AsyncIterator[str]:
    """Runs `app` until the block exits; yields its base URL (no trailing slash)."""
    # IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on
    # sockets whose proto says TCP. Without it every response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        **(limits.uvicorn_options() if limits is not None else {}),
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

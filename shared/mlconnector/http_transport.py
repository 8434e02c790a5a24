"""An httpx transport that sends through aiohttp.

The API clients keep httpx's interface (auth flows, typed errors, `MockTransport` in tests),
while the HTTP/1.1 work below it (connection pool, parsing, socket writes) is aiohttp's,
which takes about a third of the CPU of httpx's own stack per request (README,
Benchmarks). Failures come out as httpx's transport errors, so callers tell "no answer"
from an answer exactly as before.
"""

from __future__ import annotations

import aiohttp
import httpx
import yarl


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    given = request.extensions.get("timeout", {})
    return aiohttp.ClientTimeout(
        total=None,
        connect=given.get("connect"),
        sock_read=given.get("read"),
    )


def _transport_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """httpx's error for what aiohttp (or the socket) reported."""
    message = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, TimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        kind = httpx.RemoteProtocolError
    else:
        kind = httpx.NetworkError
    return kind(message, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        # Opened on first use, inside the event loop that uses it.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                # Cookies, decompression, redirects and default headers are httpx's.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            async with self._opened().request(
                request.method,
                # As httpx encoded it: pre-signed URLs must reach storage byte for byte.
                yarl.URL(str(request.url), encoded=True),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            ) as answer:
                content = await answer.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc, request) from exc
        return httpx.Response(
            answer.status,
            headers=[(k, v) for k, v in answer.raw_headers],
            content=content,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

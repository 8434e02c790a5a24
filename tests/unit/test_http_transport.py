"""The aiohttp transport under httpx: what goes out, what comes back, and failures as
httpx's transport errors (which the clients read as "no answer")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from mlconnector.http_transport import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head, await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_request_goes_out_as_httpx_built_it_and_the_answer_comes_back_unchanged(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nx-amz-meta-a: 1\r\n"
            b"x-amz-meta-a: 2\r\nContent-Length: 5\r\n\r\nmoved"
        )
        await writer.drain()
        writer.close()

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        answer = await client.put(
            f"{base}/up?X-Amz-Signature=a%2Fb",
            content=b"%PDF-1.4",
            headers={"Content-Type": "application/pdf", "Authorization": "Bearer t"},
        )

    ((head, body),) = seen
    assert head.startswith(b"PUT /up?X-Amz-Signature=a%2Fb HTTP/1.1\r\n")
    assert b"\r\ncontent-type: application/pdf\r\n" in head.lower()
    assert b"\r\nauthorization: bearer t\r\n" in head.lower()
    assert body == b"%PDF-1.4"
    # No redirect followed below httpx; repeated headers kept.
    assert answer.status_code == 302
    assert answer.headers["location"] == "/elsewhere"
    assert answer.headers.get_list("x-amz-meta-a") == ["1", "2"]
    assert answer.content == b"moved"


async def test_a_refused_connection_is_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_a_server_that_hangs_up_without_answering_is_a_transport_error(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{base}/v1/vendors", content=b"[]")


async def test_an_answer_slower_than_the_read_timeout_is_a_read_timeout(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.close()

    base = await serve(handler)
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{base}/slow")
    release.set()

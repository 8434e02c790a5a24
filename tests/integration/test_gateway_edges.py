"""The gateway against a careless or hostile sender (issue 17, item 4): replayed signed
webhooks, malformed headers and paths, unknown tenants behind "*" secrets, and clients that
send slowly or hold connections open. Real HTTP, the real broker and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr
from webhook_support import RunningGateway, events_until, running_gateway

from mlconnector.basware import BaswareCredentials
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.settings import KafkaSettings
from mlconnector.visma import VismaCredentials
from webhook_gateway.secret_source import ConfiguredSecrets, ConnectionSecrets, WebhookSecret
from webhook_gateway.settings import VISMA_SCHEME
from webhook_gateway.verify import SignatureEncoding, SignatureScheme, sign

pytestmark = pytest.mark.integration

COMPANY = "1000001"
VISMA_TENANT = "visma-tenant-1"
SHARED_SECRET = "shared-webhook-secret"
TIMESTAMPED = SignatureScheme(
    header="x-bwapi-signature-256",
    encoding=SignatureEncoding.HEX,
    timestamp_header="x-bwapi-timestamp",
)


def known_connection() -> Connection:
    return Connection(
        name="known",
        visma=VismaCredentials(
            client_id="v",
            client_secret=SecretStr("v-secret"),
            tenant_id=VISMA_TENANT,
            company_id=COMPANY,
        ),
        basware=BaswareCredentials(client_id="b", client_secret=SecretStr("b-secret")),
    )


@pytest.fixture
async def gateway(
    kafka_settings: KafkaSettings, database_url: str
) -> AsyncIterator[RunningGateway]:
    """One known connection; every secret comes from "*" entries, which serve any tenant
    that has a connection, and must not make any other tenant known."""
    shared = [WebhookSecret(value=SecretStr(SHARED_SECRET))]
    secrets = ConnectionSecrets(
        StaticConnectionSource([known_connection()]).list,
        ConfiguredSecrets(basware={"*": shared}, visma={"*": shared}),
        refresh=timedelta(minutes=1),
    )
    async with running_gateway(
        kafka_settings,
        database_url,
        basware_signature=TIMESTAMPED,
        secrets=secrets,
        header_timeout=timedelta(seconds=1),
        body_timeout=timedelta(seconds=1),
        max_connections=50,
    ) as running:
        yield running


def visma_body(record: str = "50012", timestamp: datetime | None = None) -> bytes:
    body = {
        "entity": "Supplier",
        "event": "Changed",
        "id": record,
        "tenantId": VISMA_TENANT,
        "timestamp": (timestamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    return json.dumps(body).encode()


def visma_headers(body: bytes, notification_id: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-vwd-signature-v1": sign(SHARED_SECRET.encode(), body, VISMA_SCHEME),
        "x-vwd-notification-id": notification_id or str(uuid.uuid4()),
        "x-vwd-tenant-id": VISMA_TENANT,
    }


async def post_visma(gateway: RunningGateway, body: bytes, **headers: str) -> httpx.Response:
    sent = visma_headers(body) | headers
    return await gateway.client.post("/webhooks/visma", content=body, headers=sent)


async def visma_events_before_sentinel(gateway: RunningGateway) -> list[str]:
    """The event ids on visma.notifications, up to a new good notification sent now."""
    sentinel = await post_visma(gateway, visma_body(record="sentinel"))
    assert sentinel.status_code == 200, sentinel.text
    sentinel_id = sentinel.json()["event_id"]
    topic = gateway.settings.topics.visma_notifications
    events = await events_until(gateway.kafka, topic, lambda e: e.event_id == sentinel_id)
    return [e.event_id for e in events[:-1]]


def basware_body() -> bytes:
    task = {
        "taskId": str(uuid.uuid4()),
        "taskStatus": "New",
        "taskType": "AccountingDocuments",
        "documentId": "63255782d0a04d8d8defcc6a0062101d",
    }
    return json.dumps(task).encode()


async def test_a_signed_visma_webhook_replayed_with_fresh_ids_is_published_once(
    gateway: RunningGateway,
) -> None:
    body = visma_body()
    first = await post_visma(gateway, body)
    assert first.json()["outcome"] == "accepted"
    replays = [await post_visma(gateway, body) for _ in range(100)]
    assert {(r.status_code, r.json()["outcome"]) for r in replays} == {(200, "duplicate")}
    assert await visma_events_before_sentinel(gateway) == [first.json()["event_id"]]


async def test_a_signed_visma_body_outside_its_time_window_is_refused(
    gateway: RunningGateway,
) -> None:
    window = gateway.settings.visma_body_time_window
    old = await post_visma(gateway, visma_body(timestamp=datetime.now(UTC) - 2 * window))
    ahead = await post_visma(gateway, visma_body(timestamp=datetime.now(UTC) + 2 * window))
    assert (old.status_code, old.json()) == (401, {"error": "stale_timestamp"})
    assert (ahead.status_code, ahead.json()) == (401, {"error": "stale_timestamp"})
    garbled = json.dumps({"entity": "Supplier", "event": "Changed", "timestamp": "²"}).encode()
    assert (await post_visma(gateway, garbled)).status_code == 401
    assert await visma_events_before_sentinel(gateway) == []


@pytest.mark.parametrize(
    "tenant", ["evil-tenant", "..", "%2E%2E", "1000001%00", "%C2%B2", "x" * 300]
)
async def test_a_path_tenant_without_a_connection_is_refused_even_with_star_secrets(
    gateway: RunningGateway, tenant: str
) -> None:
    """Sent as written: httpx would resolve ".." before sending."""
    body = basware_body()
    headers = gateway.basware_headers(body, secret=SHARED_SECRET)
    status, answer = await raw_post(gateway, f"/webhooks/basware/{tenant}", body, headers)
    assert status == 404
    assert answer.endswith(b'{"error":"unknown_tenant"}')


async def test_the_known_tenant_is_served_by_star_secrets(gateway: RunningGateway) -> None:
    body = basware_body()
    headers = gateway.basware_headers(body, secret=SHARED_SECRET)
    response = await gateway.post_basware(COMPANY, body, headers)
    assert (response.status_code, response.json()["outcome"]) == (200, "accepted")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-bwapi-timestamp", "²"),
        ("x-bwapi-timestamp", "1" * 30),
        ("content-length", "²"),
    ],
)
async def test_malformed_basware_headers_are_4xx(
    gateway: RunningGateway, header: str, value: str
) -> None:
    body = basware_body()
    headers = gateway.basware_headers(body, secret=SHARED_SECRET)
    length = None
    if header == "content-length":
        length = value
    else:
        headers[header] = value
        headers[TIMESTAMPED.header] = sign(SHARED_SECRET.encode(), body, TIMESTAMPED, value)
    status, answer = await raw_post(gateway, f"/webhooks/basware/{COMPANY}", body, headers, length)
    assert 400 <= status < 500, answer


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-vwd-notification-id", "n\x01id"),
        ("x-vwd-notification-id", "n" * 201),
        ("x-vwd-tenant-id", VISMA_TENANT + "\x7f"),
    ],
)
async def test_malformed_visma_headers_are_4xx(
    gateway: RunningGateway, header: str, value: str
) -> None:
    body = visma_body()
    headers = visma_headers(body) | {header: value}
    status, answer = await raw_post(gateway, "/webhooks/visma", body, headers)
    assert 400 <= status < 500, answer


async def test_control_characters_in_signed_ids_are_refused(gateway: RunningGateway) -> None:
    body = json.dumps({"entity": "Supplier", "event": "Changed", "id": "50\u000012"}).encode()
    response = await post_visma(gateway, body)
    assert (response.status_code, response.json()) == (422, {"error": "invalid_payload"})
    task = json.loads(basware_body())
    task["taskId"] = "t\u00001"
    raw = json.dumps(task).encode()
    headers = gateway.basware_headers(raw, secret=SHARED_SECRET)
    answer = await gateway.post_basware(COMPANY, raw, headers)
    assert (answer.status_code, answer.json()) == (422, {"error": "invalid_payload"})


# --- slow and idle clients ---


async def raw_post(
    gateway: RunningGateway,
    path: str,
    body: bytes,
    headers: dict[str, str],
    content_length: str | None = None,
) -> tuple[int, bytes]:
    """One request written byte for byte as given (httpx would refuse some of these
    headers); returns the status and the raw answer."""
    reader, writer = await open_connection(gateway)
    lines = [f"POST {path} HTTP/1.1", "host: gateway"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name != "content-length"]
    lines.append(f"content-length: {content_length or len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    async with asyncio.timeout(10):
        answer = await reader.read(65536)
    writer.close()
    return int(answer.split(b" ", 2)[1]), answer


async def open_connection(
    gateway: RunningGateway,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(gateway.url)
    assert url.hostname is not None
    assert url.port is not None
    return await asyncio.open_connection(url.hostname, url.port)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    received = b""
    # A guard against a hang, not a timed assertion: the server must close first.
    async with asyncio.timeout(20):
        try:
            while chunk := await reader.read(4096):
                received += chunk
        except ConnectionResetError:
            pass  # closed before it read what was sent: the kernel answers with a reset
    return received


async def test_a_client_sending_headers_at_one_byte_a_tick_is_cut_off(
    gateway: RunningGateway,
) -> None:
    reader, writer = await open_connection(gateway)
    request = b"POST /webhooks/visma HTTP/1.1\r\nhost: gateway\r\n" + b"x-padding: " + b"a" * 500

    async def drip() -> int:
        sent = 0
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.1)
        return sent

    dripping = asyncio.create_task(drip())
    await closed_by_server(reader)
    dripping.cancel()
    with pytest.raises((asyncio.CancelledError, ConnectionError)):
        await dripping
    writer.close()
    assert (await gateway.client.get("/healthz")).is_success


async def test_a_body_sent_at_one_byte_a_tick_gets_408_and_the_connection_is_closed(
    gateway: RunningGateway,
) -> None:
    reader, writer = await open_connection(gateway)
    body = visma_body()
    head = [
        "POST /webhooks/visma HTTP/1.1",
        "host: gateway",
        *(f"{name}: {value}" for name, value in visma_headers(body).items()),
        f"content-length: {len(body)}",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())

    async def drip() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    dripping = asyncio.create_task(drip())
    answer = await closed_by_server(reader)
    dripping.cancel()
    with pytest.raises((asyncio.CancelledError, ConnectionError)):
        await dripping
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert b'{"error":"body_timeout"}' in answer


async def test_three_hundred_slow_header_connections_do_not_stay_open(
    gateway: RunningGateway,
) -> None:
    connections = [await open_connection(gateway) for _ in range(300)]
    for _, writer in connections:
        writer.write(b"POST /webhooks/visma HTTP/1.1\r\nhost: gate")
    closed = await asyncio.gather(*(closed_by_server(reader) for reader, _ in connections))
    assert len(closed) == 300
    for _, writer in connections:
        writer.close()
    body = visma_body()
    served = await post_visma(gateway, body)
    assert (served.status_code, served.json()["outcome"]) == (200, "accepted")

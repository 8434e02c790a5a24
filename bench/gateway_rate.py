"""Verified webhooks per second through the webhook gateway.

The gateway runs as its own process (`python -m webhook_gateway`, as in production) on the
local stack (embedded broker and PostgreSQL unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL
are set). This process sends N correctly signed Basware webhooks, each with its own taskId,
over C keep-alive connections, and counts what reached basware.events. Every 200 means
verified, claimed in PostgreSQL, and acknowledged by Kafka (acks=all) before the answer.

    .venv/bin/python bench/gateway_rate.py --webhooks 5000 --connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel

from mlconnector.asgi import free_port
from mlconnector.kafka import ensure_topics
from mlconnector_cli.stack import Stack, fresh_database, local_stack
from webhook_gateway.settings import BASWARE_DEFAULT_SCHEME
from webhook_gateway.verify import sign

TENANT = "bench"
SECRET = "bench-webhook-secret"


class GatewayRate(BaseModel):
    webhooks: int
    connections: int
    seconds: float
    accepted: int
    republished: int

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds


@contextlib.asynccontextmanager
async def gateway_process(
    stack: Stack, database_url: str, topic: str, log_dir: Path | None = None
) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        **stack.environment(),
        "DATABASE_URL": database_url,
        "MLC_HTTP_PORT": str(port),
        "MLC_LOG_LEVEL": "WARNING",
        "MLC_GATEWAY_BASWARE_SECRETS": json.dumps({TENANT: [{"value": SECRET}]}),
        "MLC_GATEWAY_TOPICS": json.dumps({"basware_events": topic}),
    }
    log = contextlib.ExitStack()
    output = None
    if log_dir is not None:
        output = log.enter_context((log_dir / "webhook-gateway.log").open("ab"))
    process = subprocess.Popen(
        [sys.executable, "-m", "webhook_gateway"], env=env, stdout=output, stderr=output
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                if process.poll() is not None:
                    raise RuntimeError(f"the gateway exited with {process.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the gateway did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def signed_webhooks(count: int) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for _ in range(count):
        body = json.dumps(
            {
                "taskId": str(uuid.uuid4()),
                "taskStatus": "New",
                "taskType": "AccountingDocuments",
                "taskSubType": "WaitingForTransfer",
                "documentId": uuid.uuid4().hex,
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            BASWARE_DEFAULT_SCHEME.header: sign(SECRET.encode(), body, BASWARE_DEFAULT_SCHEME),
        }
        requests.append((body, headers))
    return requests


async def send(url: str, webhooks: list[tuple[bytes, dict[str, str]]], connections: int) -> int:
    """POSTs every webhook over `connections` keep-alive connections; returns how many got 200.

    A minimal HTTP/1.1 client on asyncio streams: httpx costs about ten times the gateway's
    own CPU time per request, and on two cores the load generator would set the figure."""
    host, port = url.removeprefix("http://").split(":")
    pending = list(reversed(webhooks))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while pending:
                body, headers = pending.pop()
                head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                writer.write(
                    f"POST /webhooks/basware/{TENANT} HTTP/1.1\r\nhost: {host}\r\n"
                    f"content-length: {len(body)}\r\n{head}\r\n".encode()
                    + body
                )
                await writer.drain()
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                accepted += status == 200
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return accepted


async def count_records(bootstrap_servers: str, topic: str, expected: int) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = 0
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=2000)
            if not batches:
                break  # nothing more arrived: the count is what it is
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    return seen


async def measure(webhooks: int, connections: int, log_dir: Path | None = None) -> GatewayRate:
    topic = f"basware.events.bench{uuid.uuid4().hex[:8]}"
    async with local_stack(purpose="bench") as stack:
        await ensure_topics(stack.kafka_settings(), [topic])
        async with (
            fresh_database(stack.database_url, "gwbench") as database_url,
            gateway_process(stack, database_url, topic, log_dir) as url,
        ):
            await send(url, signed_webhooks(min(webhooks, 50)), connections)  # warm-up
            requests = signed_webhooks(webhooks)
            started = time.perf_counter()
            accepted = await send(url, requests, connections)
            seconds = time.perf_counter() - started
        republished = await count_records(stack.bootstrap_servers, topic, webhooks + 50)
    return GatewayRate(
        webhooks=webhooks,
        connections=connections,
        seconds=seconds,
        accepted=accepted,
        republished=republished - min(webhooks, 50),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    rate = asyncio.run(measure(args.webhooks, args.connections))
    print(
        f"{rate.accepted}/{rate.webhooks} verified webhooks in {rate.seconds:.2f} s over "
        f"{rate.connections} keep-alive connections: {rate.per_second:.0f}/s; "
        f"{rate.republished} republished"
    )


if __name__ == "__main__":
    main()

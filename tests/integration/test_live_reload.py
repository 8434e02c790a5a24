"""A master key rotation and a new connection reach the running gateway and visma-reader
without a restart and without one failed request (issue 17, item 5).

Both services read the encrypted store with the key file MLC_MASTER_KEY_FILE, as in
production. While signed webhooks flow and polls run, the operator puts a new key first in
the file, runs the rotation (`mlconnector keys rotate` calls `ConnectionStore.rotate_keys`),
adds a second connection sealed under the new key, then drops the old key from the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import TopicNames
from sandbox_support import (
    SANDBOX_BASWARE_SECRET,
    SANDBOX_VISMA_SECRET,
    sandbox_connection,
    sandboxes,
)

from mlconnector.asgi import serve_asgi
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring, MasterKey, generate_key
from visma_reader.app import create_app as create_reader
from visma_reader.settings import ReaderSettings
from visma_sandbox.config import SeedOptions
from visma_sandbox.runner import RunningSandbox
from webhook_gateway.app import create_app as create_gateway
from webhook_gateway.settings import (
    BASWARE_DEFAULT_SCHEME,
    VISMA_SCHEME,
    GatewaySettings,
    GatewayTopics,
)
from webhook_gateway.verify import sign

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=2, suppliers=2, purchase_orders=0, invoices=0)


def ring(*keys: str) -> Keyring:
    loaded = [MasterKey.from_base64(k) for k in keys]
    return Keyring(loaded[0], loaded[1:])


class Traffic:
    """Signed webhooks of every connection that exists, sent one after another while the
    test runs; every answer is kept."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.connections: list[Connection] = []
        self.answers: list[tuple[str, str, int]] = []  # (tenant, source, status)

    def accepted(self, tenant: str) -> int:
        return sum(1 for t, _, status in self.answers if t == tenant and status == 200)

    async def run(self) -> None:
        while True:
            for connection in list(self.connections):
                await self._visma(connection)
                await self._basware(connection)
            await asyncio.sleep(0.02)  # pacing only: every answer is asserted

    async def _visma(self, connection: Connection) -> None:
        body = json.dumps(
            {
                "entity": "Supplier",
                "event": "Updated",
                "id": str(uuid.uuid4()),
                "tenantId": connection.visma.tenant_id,
                "timestamp": datetime.now(UTC).isoformat(),
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-vwd-signature-v1": sign(SANDBOX_VISMA_SECRET.encode(), body, VISMA_SCHEME),
            "x-vwd-notification-id": str(uuid.uuid4()),
            "x-vwd-tenant-id": connection.visma.tenant_id,
        }
        answer = await self.client.post("/webhooks/visma", content=body, headers=headers)
        self.answers.append((connection.tenant, "visma", answer.status_code))

    async def _basware(self, connection: Connection) -> None:
        body = json.dumps(
            {
                "taskId": str(uuid.uuid4()),
                "taskStatus": "New",
                "taskType": "AccountingDocuments",
                "documentId": uuid.uuid4().hex,
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            BASWARE_DEFAULT_SCHEME.header: sign(
                SANDBOX_BASWARE_SECRET.encode(), body, BASWARE_DEFAULT_SCHEME
            ),
        }
        path = f"/webhooks/basware/{connection.tenant}"
        answer = await self.client.post(path, content=body, headers=headers)
        self.answers.append((connection.tenant, "basware", answer.status_code))


def supplier_lists(visma: RunningSandbox, tenant: str) -> int:
    return visma.state.log.count("supplier.list", company_id=tenant)


async def until(done: Callable[[], bool]) -> None:
    # A guard against a hang, not a timed assertion.
    async with asyncio.timeout(60):
        while not done():
            await asyncio.sleep(0.05)


async def test_key_rotation_and_a_new_connection_apply_without_a_failed_request(
    kafka_settings: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("VISMA_CLIENT_ID", "MLC_MASTER_KEY", "MLC_MASTER_KEYS", "MLC_DEV_KEY"):
        monkeypatch.delenv(name, raising=False)
    old_key, new_key = generate_key(), generate_key()
    key_file = tmp_path / "master.key"
    key_file.write_text(f"{old_key}\n")
    monkeypatch.setenv("MLC_MASTER_KEY_FILE", str(key_file))
    caplog.set_level(logging.WARNING)
    database = DatabaseSettings(database_url=database_url)

    async with sandboxes(seed=SEED) as (basware, visma):
        first = sandbox_connection(basware, visma, visma_company="1000001")
        second = sandbox_connection(basware, visma, visma_company="1000002")
        async with ConnectionStore.open(database_url, ring(old_key)) as operator:
            await operator.add(first)

        gateway = create_gateway(
            kafka_settings,
            database,
            GatewaySettings(
                topics=GatewayTopics(
                    basware_events=topics[Topic.BASWARE_EVENTS],
                    visma_notifications=topics[Topic.VISMA_NOTIFICATIONS],
                ),
                connections_refresh=timedelta(seconds=1),
            ),
        )
        reader = create_reader(
            kafka_settings,
            database,
            ReaderSettings(poll_interval_seconds=0.5, connections_refresh_seconds=0.5),
            changes_topic=topics[Topic.VISMA_CHANGES],
            notifications_topic=topics[Topic.VISMA_NOTIFICATIONS],
        )
        async with (
            serve_asgi(gateway) as gateway_url,
            serve_asgi(reader),
            httpx.AsyncClient(base_url=gateway_url) as client,
        ):
            traffic = Traffic(client)
            traffic.connections.append(first)
            flowing = asyncio.create_task(traffic.run())
            try:
                await until(lambda: traffic.accepted(first.tenant) >= 10)
                await until(lambda: supplier_lists(visma, first.tenant) >= 2)

                # The rotation, as the operator runs it.
                key_file.write_text(f"{new_key}\n{old_key}\n")
                async with ConnectionStore.open(database_url, ring(new_key, old_key)) as operator:
                    report = await operator.rotate_keys()
                    assert report.resealed > 0
                    await operator.add(second)
                polls_at_rotation = supplier_lists(visma, first.tenant)
                accepted_at_rotation = traffic.accepted(first.tenant)
                traffic.connections.append(second)

                await until(lambda: supplier_lists(visma, second.tenant) >= 2)
                await until(lambda: traffic.accepted(second.tenant) >= 10)
                await until(
                    lambda: (
                        supplier_lists(visma, first.tenant) >= polls_at_rotation + 2
                        and traffic.accepted(first.tenant) >= accepted_at_rotation + 10
                    ),
                )

                # The old key leaves the file: nothing is sealed under it any more.
                key_file.write_text(f"{new_key}\n")
                both = (traffic.accepted(first.tenant), traffic.accepted(second.tenant))
                await until(
                    lambda: (
                        traffic.accepted(first.tenant) >= both[0] + 10
                        and traffic.accepted(second.tenant) >= both[1] + 10
                    ),
                )
            finally:
                flowing.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await flowing

    failed = [answer for answer in traffic.answers if answer[2] != 200]
    assert failed == []
    assert len(traffic.answers) >= 60
    troubles = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and record.name.startswith(("visma_reader", "webhook_gateway"))
    ]
    assert troubles == []

"""visma-reader as a service: its FastStream app woken by a notification, and its process
killed with SIGKILL mid-backfill. The Visma sandbox over HTTP, the real broker and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from faststream.kafka import KafkaBroker
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from reader_support import (
    add_company,
    current_events,
    deduped,
    load_suppliers,
    private_topic,
    published_events,
    seed_company,
    visma_credentials,
    visma_endpoints,
)

from mlconnector.asgi import serve_asgi
from mlconnector.basware import BaswareCredentials
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.contracts import ChangeEvent, Entity, VismaNotification
from mlconnector.kafka import make_broker, publish_events
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.visma import VismaClient
from visma_reader.app import create_app
from visma_reader.cursor_store import CursorStore
from visma_reader.poller import Stream
from visma_reader.settings import ReaderSettings
from visma_sandbox import (
    CompanyState,
    FaultRule,
    RunningSandbox,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    run_visma_sandbox,
)

pytestmark = pytest.mark.integration

STAMP = datetime(2026, 11, 20, 8, 30, 0)
# Far away: in these tests only the first cycle and notifications make the reader poll.
HOUR = 3600.0


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_visma_sandbox(SandboxConfig(seed=SeedOptions(companies=0))) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox: RunningSandbox) -> Iterator[None]:
    yield
    sandbox.state.settings = SandboxSettings()
    sandbox.state.faults.clear()


@pytest.fixture
async def broker(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaBroker]:
    """The test's own producer: notifications in, sentinels for reading the topic back."""
    broker = make_broker(kafka_settings, client_id="test-reader-app")
    async with broker:
        await broker.start()
        yield broker


async def events_until(
    kafka: KafkaSettings,
    broker: KafkaBroker,
    topic: str,
    done: Callable[[list[ChangeEvent]], bool],
) -> list[ChangeEvent]:
    """What the reader published, read again until `done` says it is all there."""
    async with asyncio.timeout(60):  # a guard against a hang, not a timed assertion
        while not done(events := await published_events(kafka, broker, topic)):
            await asyncio.sleep(0.1)
    return events


def client_for(sandbox: RunningSandbox, company: CompanyState) -> VismaClient:
    return VismaClient(visma_credentials(company), visma_endpoints(sandbox))


def metric(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


async def test_a_notification_polls_that_tenant_and_entity_at_once(
    sandbox: RunningSandbox,
    kafka_settings: KafkaSettings,
    database_url: str,
    broker: KafkaBroker,
) -> None:
    company = add_company(sandbox)
    seed_company(company, SeedOptions(suppliers=8, purchase_orders=8, invoices=8))
    tenant = company.company_id
    changes = await private_topic(kafka_settings)
    notifications = await private_topic(kafka_settings, "visma.notifications")
    connection = Connection(
        name="reader-app",
        visma=visma_credentials(company),
        visma_endpoints=visma_endpoints(sandbox),
        basware=BaswareCredentials(client_id="unused", client_secret=SecretStr("unused")),
    )
    app = create_app(
        kafka_settings,
        DatabaseSettings(database_url=database_url),
        ReaderSettings(poll_interval_seconds=HOUR, page_size=5),
        connections=StaticConnectionSource([connection]),
        changes_topic=changes,
        notifications_topic=notifications,
    )
    async with serve_asgi(app) as url, client_for(sandbox, company) as visma:
        # The first cycle backfills every entity.
        seeded = {
            event.event_id
            for entity in Entity
            for event in (await current_events(visma, tenant, entity)).values()
        }
        await events_until(kafka_settings, broker, changes, lambda e: set(deduped(e)) >= seeded)

        supplier = company.table("supplier").spec.key_text(
            next(iter(company.table("supplier"))).key
        )
        company.update("supplier", supplier, {"name": "Renamed By Webhook AS"})
        invoice_lists = sandbox.state.log.count("supplierinvoice.list", company_id=tenant)
        notification = VismaNotification(
            event_id=str(uuid.uuid4()),
            tenant=tenant,
            notification_id=str(uuid.uuid4()),
            entity=Entity.SUPPLIER,
            event="Updated",
            record_key=supplier,
        )
        await publish_events(broker, notifications, [notification])
        changed = (await current_events(visma, tenant, Entity.SUPPLIER))[supplier].event_id
        await events_until(kafka_settings, broker, changes, lambda e: changed in deduped(e))
        # Only the notified entity (and what it depends on: nothing, for suppliers).
        assert sandbox.state.log.count("supplierinvoice.list", company_id=tenant) == invoice_lists

        async with httpx.AsyncClient(base_url=url) as http:
            text = (await http.get("/metrics")).text
    labels = {"tenant": tenant, "entity": "supplier"}
    assert (metric(text, "mlc_reader_last_success_timestamp_seconds", **labels) or 0) > 0
    assert metric(text, "mlc_reader_events_published_total", **labels) == 9  # 8 + the change
    assert metric(text, "mlc_reader_backfill_read_records", **labels) == 8
    assert metric(text, "mlc_reader_backfill_total_records", **labels) == 8
    assert metric(text, "mlc_reader_poll_duration_seconds_count", **labels) == 2
    receipts = {"tenant": tenant, "entity": "purchase_receipt"}
    assert (metric(text, "mlc_reader_records_read_total", **receipts) or 0) > 0


def reader_environment(
    sandbox: RunningSandbox,
    company: CompanyState,
    kafka: KafkaSettings,
    database_url: str,
    changes: str,
    notifications: str,
) -> dict[str, str]:
    """visma-reader configured as in a deployment: one connection from the environment."""
    credentials = visma_credentials(company)
    inherited = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {
        **inherited,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
        "DATABASE_URL": database_url,
        # Started again after a kill, the reader takes its lease back at once.
        "VISMA_READER_INSTANCE": "test-reader",
        "VISMA_CLIENT_ID": credentials.client_id,
        "VISMA_CLIENT_SECRET": credentials.client_secret.get_secret_value(),
        "VISMA_TENANT_ID": credentials.tenant_id,
        "VISMA_COMPANY_ID": credentials.company_id,
        "VISMA_TOKEN_URL": sandbox.token_url,
        "VISMA_API_BASE_URL": sandbox.api_base_url,
        "BASWARE_CLIENT_ID": "unused",
        "BASWARE_CLIENT_SECRET": "unused",
        "MLC_ENTITIES": "supplier",
        "MLC_HTTP_PORT": "0",
        "VISMA_READER_PAGE_SIZE": "50",
        "VISMA_READER_POLL_INTERVAL_SECONDS": str(HOUR),
        "VISMA_READER_CHANGES_TOPIC": changes,
        "VISMA_READER_NOTIFICATIONS_TOPIC": notifications,
    }


async def start_reader(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "visma-reader"), env=env, stdout=out, stderr=out
        )


async def test_the_reader_process_killed_mid_backfill_loses_nothing(
    sandbox: RunningSandbox,
    kafka_settings: KafkaSettings,
    database_url: str,
    broker: KafkaBroker,
    tmp_path: Path,
) -> None:
    company = add_company(sandbox)
    load_suppliers(company, 200, at=STAMP)
    changes = await private_topic(kafka_settings)
    notifications = await private_topic(kafka_settings, "visma.notifications")
    env = reader_environment(sandbox, company, kafka_settings, database_url, changes, notifications)
    # Page 3 of the backfill hangs: pages 1 and 2 are on Kafka, the cursor is not saved.
    hang = FaultRule(path="/v1/supplier*", delay_ms=30_000, times=1)

    def hang_from_now(_: CompanyState) -> None:
        sandbox.state.add_fault(hang)

    company.after_page("supplier", 2, hang_from_now)
    log = tmp_path / "visma-reader.log"
    reader = await start_reader(env, log)
    try:
        await events_until(kafka_settings, broker, changes, lambda e: len(e) >= 100)
        reader.send_signal(signal.SIGKILL)
        assert await reader.wait() == -signal.SIGKILL
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        try:
            cursor = await CursorStore(pool).cursor(company.company_id, Stream.SUPPLIER)
        finally:
            await pool.close()
        assert cursor.high_water is None

        reader = await start_reader(env, log)
        async with client_for(sandbox, company) as visma:
            expected = {
                e.event_id
                for e in (await current_events(visma, company.company_id, Entity.SUPPLIER)).values()
            }
        events = await events_until(
            kafka_settings, broker, changes, lambda e: set(deduped(e)) >= expected
        )
    finally:
        if reader.returncode is None:
            reader.send_signal(signal.SIGTERM)
            await reader.wait()
    assert set(deduped(events)) == expected, log.read_text()
    assert len(events) >= 200

"""A Visma notification brings a change to Basware before the next scheduled poll; without
notifications (the gateway down), the scheduled poll still delivers it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from conftest import TopicNames
from pipeline_support import covers, pipeline, read_events
from pydantic import SecretStr
from sandbox_support import (
    SANDBOX_VISMA_SECRET,
    VISMA_COMPANY,
    sandbox_connection,
    sandboxes,
    seeded_records,
    until_vendor_named,
)

from mlconnector.asgi import serve_asgi
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.topics import Topic
from visma_sandbox.config import SeedOptions
from visma_sandbox.runner import RunningSandbox
from visma_sandbox.webhooks import Subscription as VismaSubscription
from webhook_gateway.app import create_app
from webhook_gateway.secret_source import ConfiguredSecrets, ConnectionSecrets
from webhook_gateway.settings import GatewaySettings, GatewayTopics

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=1, suppliers=3, purchase_orders=0, invoices=0)
# Far longer than the test's guard: a change delivered in the test came from a notification.
NEVER = 3600.0


@contextlib.asynccontextmanager
async def gateway(
    kafka: KafkaSettings, database_url: str, topics: TopicNames, connection: Connection
) -> AsyncIterator[str]:
    settings = GatewaySettings(
        topics=GatewayTopics(
            basware_events=topics[Topic.BASWARE_EVENTS],
            visma_notifications=topics[Topic.VISMA_NOTIFICATIONS],
        ),
    )
    secrets = ConnectionSecrets(
        StaticConnectionSource([connection]).list,
        ConfiguredSecrets({}, {}),
        refresh=timedelta(minutes=1),
    )
    app = create_app(kafka, DatabaseSettings(database_url=database_url), settings, secrets)
    async with serve_asgi(app) as url:
        yield url


def rename_first_supplier(visma: RunningSandbox, name: str) -> str:
    company = visma.state.company(VISMA_COMPANY)
    table = company.table("supplier")
    number = table.spec.key_text(next(iter(table)).key)
    company.update("supplier", number, {"name": name})
    return number


async def test_a_notification_triggers_the_poll_that_delivers_the_change(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    async with sandboxes(seed=SEED) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        seeded = seeded_records(visma)
        async with (
            gateway(kafka_settings, database_url, topics, connection) as url,
            pipeline(kafka_settings, database_url, topics, connection, poll_interval_seconds=NEVER),
        ):
            # The first poll at start is the backfill; the next scheduled one is an hour away.
            await read_events(kafka_settings, topics[Topic.BASWARE_RESULTS], covers(seeded))
            visma.state.webhooks.subscribe(
                VismaSubscription(
                    company_id=VISMA_COMPANY,
                    url=f"{url}/webhooks/visma",
                    secrets=[SecretStr(SANDBOX_VISMA_SECRET)],
                )
            )
            number = rename_first_supplier(visma, "Renamed after a notification")
            await until_vendor_named(basware, number, "Renamed after a notification")


async def test_without_notifications_the_scheduled_poll_still_delivers(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    async with sandboxes(seed=SEED) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        # Notifications are on in Visma, but nobody listens: they are lost (Visma never retries).
        visma.state.webhooks.subscribe(
            VismaSubscription(
                company_id=VISMA_COMPANY,
                url="http://127.0.0.1:9/webhooks/visma",
                secrets=[SecretStr(SANDBOX_VISMA_SECRET)],
            )
        )
        async with pipeline(
            kafka_settings, database_url, topics, connection, poll_interval_seconds=0.5
        ):
            number = rename_first_supplier(visma, "Renamed while the gateway was down")
            await until_vendor_named(basware, number, "Renamed while the gateway was down")

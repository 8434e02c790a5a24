"""Writer instances in one consumer group: they split the partitions, share one request budget,
and a rebalance in the middle of the work loses nothing and sends nothing twice that matters."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from conftest import TopicNames
from writer_support import (
    all_final,
    fetch,
    keys,
    publish,
    quick_settings,
    records,
    requests,
    results_until,
    running_writer,
    supplier_story,
    until,
    writer_world,
)

from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic

pytestmark = pytest.mark.integration


def partitions(writer: Any) -> set[TopicPartition]:
    """The partitions the writer's consumer holds now."""
    consumer = writer.broker.subscribers[0].consumer
    return set() if consumer is None else set(consumer.assignment())


def assigned(writer: Any) -> int:
    return len(partitions(writer))


async def test_two_then_three_writers_share_the_work(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes = topics[Topic.VISMA_CHANGES]
    async with writer_world() as (basware, _, connection):
        tenant = connection.tenant
        first = [e for n in range(1, 21) for e in supplier_story(tenant, f"A{n:02d}")]
        second = [e for n in range(1, 21) for e in supplier_story(tenant, f"B{n:02d}")]
        everything = keys(first) | keys(second)
        async with (
            running_writer(
                kafka_settings, database_url, topics, connection, quick_settings(instance="w1")
            ) as w1,
            running_writer(
                kafka_settings, database_url, topics, connection, quick_settings(instance="w2")
            ) as w2,
        ):
            await until(lambda: assigned(w1) > 0 and assigned(w2) > 0, "two writers assigned")
            await publish(kafka_settings, changes, first)
            await results_until(kafka_settings, topics, all_final(keys(first)))
            async with running_writer(
                kafka_settings, database_url, topics, connection, quick_settings(instance="w3")
            ) as w3:
                # Published while the third writer joins: the group rebalances mid-work.
                await publish(kafka_settings, changes, second)
                await results_until(kafka_settings, topics, all_final(everything))
                # While the group rebalances, a member that already holds its new partitions
                # can overlap one that has not yet revoked its old ones: wait for it to settle.
                writers = (w1, w2, w3)
                await until(
                    lambda: (
                        min(assigned(w) for w in writers) > 0
                        and sum(assigned(w) for w in writers) == kafka_settings.partitions
                    ),
                    "three writers share the partitions",
                )
                held = [partitions(w) for w in writers]
                assert set().union(*held) == {
                    TopicPartition(changes, p) for p in range(kafka_settings.partitions)
                }
                instances = await fetch(database_url, "SELECT instance FROM writer_instances")
                assert {r["instance"] for r in instances} == {"w1", "w2", "w3"}
        budgets = await fetch(database_url, "SELECT tenant, region FROM writer_budget")

    # One budget for the tenant's region, taken from by every instance.
    assert [(r["tenant"], r["region"]) for r in budgets] == [(tenant, "EU")]
    assert len(records(basware, "vendors")) == 40
    assert len(records(basware, "matchingOrders")) == 40
    numbers = [d.document.invoice_number for d in basware.state.documents()]
    assert len(numbers) == len(set(numbers)) == 40
    assert len(requests(basware, "PUT", "/_s3/uploads/")) == 40

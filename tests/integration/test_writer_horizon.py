"""Retries bounded by time: a storm is waited out up to the retry horizon, and a batch's
retries end by its deadline, so no batch outlives the consumer's poll interval."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from conftest import TopicNames
from writer_support import (
    all_final,
    keys,
    publish,
    quick_settings,
    records,
    results_until,
    running_writer,
    supplier_story,
    until,
    vendor,
    writer_world,
)

from basware_sandbox import BaswareSandbox, FaultKind, FaultRule, Region
from mlconnector.contracts import Entity, Outcome
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic

pytestmark = pytest.mark.integration

# The writer's old bound: 8 attempts, whatever the time they spanned.
OLD_MAX_ATTEMPTS = 8
# The storm on the token route: as long as issue 16 asks the writer to wait out. The horizon
# lies well past it, so the test proves the wait, not a lucky margin.
STORM_SECONDS = 60.0
STORM_HORIZON_SECONDS = 3 * STORM_SECONDS


def refusals(basware: BaswareSandbox, path_prefix: str) -> int:
    return sum(
        e.path.startswith(path_prefix) and e.status in (429, 503) for e in basware.state.request_log
    )


async def test_a_token_route_storm_longer_than_the_old_attempt_budget_is_waited_out(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """Basware's token route answers 429 or 503 to everything for a minute, far longer
    than the old attempt budget lasted; then it recovers. Everything is delivered, nothing
    ever failed. The slowest test of the writer, on purpose: the storm is not compressed."""
    async with writer_world() as (basware, _, connection):
        storm = [
            basware.state.add_fault(
                FaultRule(kind=kind, region=Region.EU, path_prefix="/v1/tokens", probability=p)
            )
            for kind, p in ((FaultKind.UNAVAILABLE, 0.3), (FaultKind.RATE_LIMIT, 1.0))
        ]
        stories = [e for n in range(1, 3) for e in supplier_story(connection.tenant, f"S{n}")]
        # Backoff capped at seconds, as the writer's own is: the storm is waited out, not
        # hammered.
        settings = quick_settings(
            retry_horizon_seconds=STORM_HORIZON_SECONDS,
            backoff_cap_seconds=2.0,
            rate_min_per_second=20,
        )
        async with running_writer(kafka_settings, database_url, topics, connection, settings):
            await publish(kafka_settings, topics[Topic.VISMA_CHANGES], stories)
            started = time.monotonic()
            await until(
                lambda: (
                    refusals(basware, "/v1/tokens") > OLD_MAX_ATTEMPTS
                    and time.monotonic() - started > STORM_SECONDS
                ),
                "the token route refused more than the old attempt budget, for a minute",
                seconds=STORM_SECONDS + 60,
            )
            for rule in storm:
                basware.state.faults.remove(rule.id)
            refused, ended = refusals(basware, "/v1/tokens"), time.monotonic()
            found = await results_until(kafka_settings, topics, all_final(keys(stories)))
            print(
                f"token-route storm of {ended - started:.0f} s, {refused} refusals: all"
                f" delivered {time.monotonic() - ended:.1f} s after it, at most"
                f" {max(r.attempts for r in found)} attempts"
            )

    assert [r for r in found if r.outcome is Outcome.FAILED] == []
    assert max(r.attempts for r in found) > OLD_MAX_ATTEMPTS
    assert len(records(basware, "vendors")) == 2
    assert len(basware.state.documents()) == 2


# Each stage of the batch is refused this many times (429, Retry-After) before it passes.
REFUSALS_PER_STAGE = 10
STAGES = ("/v1/vendors", "/v1/matchingOrders", "/v1/matchingOrderLines", "/v2/smartpdf")


async def test_a_batch_ends_within_its_poll_interval_and_is_not_taken_twice(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """Every stage of a batch (vendor, order header, lines, invoice) is refused for a while
    before it passes: retried call by call, the batch would outlast the consumer's poll
    interval, small here. Its retries end by its deadline instead: what is not through by
    then ends failed, saying why, and the batch is taken once. A later change of the same
    key (same partition, so after any second take) proves it: by its result, the vendor
    and the order header of the first batch have exactly one result each."""
    changes = topics[Topic.VISMA_CHANGES]
    async with writer_world() as (basware, _, connection):
        for prefix in STAGES:
            basware.state.add_fault(
                FaultRule(
                    kind=FaultKind.RATE_LIMIT,
                    region=Region.EU,
                    path_prefix=prefix,
                    retry_after="0.2",
                    remaining=REFUSALS_PER_STAGE,
                )
            )
        story = supplier_story(connection.tenant, "S1")
        settings = quick_settings(
            batch_work_seconds=2.0,
            retry_horizon_seconds=3.0,
            status_wait_seconds=0.1,
            rate_min_per_second=20,
        )
        # The stages' refusals alone take longer than the poll interval.
        poll_interval = settings.max_poll_interval_ms() / 1000
        assert len(STAGES) * REFUSALS_PER_STAGE * 0.2 > poll_interval
        async with running_writer(kafka_settings, database_url, topics, connection, settings):
            await publish(kafka_settings, changes, story)
            await results_until(kafka_settings, topics, lambda latest: keys(story) <= set(latest))
            later = vendor(connection.tenant, "S1", name="Leverandør S1 ASA")
            await publish(kafka_settings, changes, [later])
            found = await results_until(
                kafka_settings,
                topics,
                lambda latest: (
                    (Entity.SUPPLIER, "S1") in latest
                    and latest[(Entity.SUPPLIER, "S1")].change_event_id == later.event_id
                ),
            )

    vendor_change, order_change, _ = story
    taken = Counter(r.change_event_id for r in found)
    assert taken[vendor_change.event_id] == 1
    assert taken[order_change.event_id] == 1
    failure = next(r for r in found if r.outcome is Outcome.FAILED)
    assert "gave up after" in failure.reasons[0].message
    assert "429" in failure.reasons[0].message

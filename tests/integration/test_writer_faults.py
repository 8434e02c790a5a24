"""Basware pushing back, failing, or having the record already: what the writer makes of it."""

from __future__ import annotations

import pytest
from conftest import TopicNames
from sandbox_support import BASWARE_CLIENT
from writer_support import (
    all_final,
    by_record,
    fetch,
    keys,
    publish,
    quick_settings,
    records,
    requests,
    results_until,
    running_writer,
    supplier_story,
    vendor,
    writer_world,
)

from basware_sandbox import BaswareSandbox, FaultKind, FaultRule
from basware_sandbox.config import Region
from basware_sandbox.records import RequestLogEntry
from mlconnector.contracts import DeliveryResult, Entity, Outcome
from mlconnector.retry import parse_retry_after
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic

pytestmark = pytest.mark.integration

BASWARE_API = ("/v1/vendors", "/v1/matchingOrders", "/v1/requestStatus", "/v2/smartpdf")
RETRY_AFTER = "0.1"
STORM_RETRY_AFTER = "0.3"


async def test_a_storm_of_429_500_and_503_ends_with_everything_delivered_in_time(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The first five vendor POSTs and half of Basware's other answers are 429 (with
    Retry-After), some 503 (with Retry-After) and some 500. Everything is delivered, and
    after each Retry-After the writer sent nothing to Basware's API before it had passed
    (the sandbox's request log)."""
    async with writer_world() as (basware, _, connection):
        # The first vendor POSTs are refused for certain, whatever the dice say below.
        basware.state.add_fault(
            FaultRule(
                kind=FaultKind.RATE_LIMIT,
                region=Region.EU,
                method="POST",
                path_prefix="/v1/vendors",
                retry_after=RETRY_AFTER,
                remaining=5,
            )
        )
        for prefix in BASWARE_API:
            for kind, probability in (
                (FaultKind.RATE_LIMIT, 0.5),
                (FaultKind.UNAVAILABLE, 0.1),
                (FaultKind.SERVER_ERROR, 0.1),
            ):
                basware.state.add_fault(
                    FaultRule(
                        kind=kind,
                        region=Region.EU,
                        path_prefix=prefix,
                        retry_after=None if kind is FaultKind.SERVER_ERROR else RETRY_AFTER,
                        probability=probability,
                    )
                )
        stories = [e for n in range(1, 3) for e in supplier_story(connection.tenant, f"S{n}")]
        # One call at a time, so that no call is on its way while a Retry-After arrives.
        settings = quick_settings(
            requests_in_flight=1, max_attempts=60, backoff_cap_seconds=0.05, rate_min_per_second=10
        )
        async with running_writer(kafka_settings, database_url, topics, connection, settings):
            await publish(kafka_settings, topics[Topic.VISMA_CHANGES], stories)
            found = await results_until(kafka_settings, topics, all_final(keys(stories)))

    assert max(r.attempts for r in found) > 1
    log = [e for e in basware.state.request_log if e.path.startswith(BASWARE_API)]
    told = [e for e in log if e.status in (429, 503)]
    assert sum(e.status == 429 for e in told) >= 5
    wait = parse_retry_after(RETRY_AFTER) or 0.0
    for answer in told:
        asked_at = answer.at - answer.duration_ms / 1000
        later = [e for e in log if e.at - e.duration_ms / 1000 > answer.at]
        # Nothing that started after the answer started before its Retry-After had passed.
        assert all(e.at - e.duration_ms / 1000 >= asked_at + wait for e in later), answer
    assert len(records(basware, "vendors")) == 2
    assert len(basware.state.documents()) == 2


def inside_a_window(basware: BaswareSandbox, region: Region) -> list[RequestLogEntry]:
    """Requests that reached the host of `region` after it had answered with a Retry-After
    and before that Retry-After had passed (the sandbox's request log, its own clock)."""
    log = [e for e in basware.state.request_log if e.region == region.value]
    windows = [(e.at, e.at + float(e.retry_after)) for e in log if e.retry_after is not None]
    return [
        e
        for e in log
        if e.received_at is not None and any(s < e.received_at < end for s, end in windows)
    ]


async def test_under_a_429_storm_nothing_reaches_basware_inside_a_retry_after_it_gave(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """Half of everything the EU host answers (token route and storage PUTs included) is 429
    with Retry-After, while the writer runs at its usual concurrency. Slots are spaced by the
    budget (no burst), so a request never overlaps the one before it: whatever reached the
    sandbox after it gave a Retry-After was sent after the writer had the answer."""
    async with writer_world() as (basware, _, connection):
        # The first token request and the first PDF PUT are refused for certain.
        for prefix in ("/v1/tokens", "/_s3/uploads/"):
            basware.state.add_fault(
                FaultRule(
                    kind=FaultKind.RATE_LIMIT,
                    region=Region.EU,
                    path_prefix=prefix,
                    retry_after=STORM_RETRY_AFTER,
                    remaining=1,
                )
            )
        basware.state.add_fault(
            FaultRule(
                kind=FaultKind.RATE_LIMIT,
                region=Region.EU,
                retry_after=STORM_RETRY_AFTER,
                probability=0.5,
            )
        )
        stories = [e for n in range(1, 4) for e in supplier_story(connection.tenant, f"S{n}")]
        settings = quick_settings(rate_per_second=10, rate_burst=1, rate_min_per_second=5)
        async with running_writer(kafka_settings, database_url, topics, connection, settings):
            await publish(kafka_settings, topics[Topic.VISMA_CHANGES], stories)
            await results_until(kafka_settings, topics, all_final(keys(stories)))

    told = [e for e in basware.state.request_log if e.retry_after is not None]
    assert "/v1/tokens" in {e.path for e in told}
    assert any(e.path.startswith("/_s3/uploads/") for e in told)
    assert len(told) >= 5
    assert inside_a_window(basware, Region.EU) == []
    assert len(records(basware, "vendors")) == 3
    assert len(basware.state.documents()) == 3


async def test_attempts_are_bounded_then_failed_and_a_replay_delivers(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """A Basware that answers 503 to every vendor POST: after max_attempts the vendors are
    failed (not dropped), their orders wait; the same events again, once Basware is back,
    deliver the vendors and release the orders."""
    changes = topics[Topic.VISMA_CHANGES]
    async with writer_world() as (basware, _, connection):
        outage = basware.state.add_fault(
            FaultRule(kind=FaultKind.UNAVAILABLE, region=Region.EU, path_prefix="/v1/vendors")
        )
        stories = [supplier_story(connection.tenant, f"S{n}") for n in range(1, 4)]
        vendors = [v for v, _, _ in stories]
        orders = [o for _, o, _ in stories]
        async with running_writer(
            kafka_settings, database_url, topics, connection, quick_settings(max_attempts=3)
        ):
            await publish(kafka_settings, changes, vendors + orders)
            found = await results_until(
                kafka_settings,
                topics,
                lambda latest: (
                    all_final(keys(vendors), "failed")(latest)
                    and all_final(keys(orders), "parked")(latest)
                ),
            )
            failure = by_record(found)[(Entity.SUPPLIER, "S1")]
            assert failure.attempts == 3
            assert "gave up after 3 attempts" in failure.reasons[0].message
            assert records(basware, "vendors") == []

            basware.state.faults.remove(outage.id)
            await publish(kafka_settings, changes, vendors)  # a replay, as audit-store sends it
            await results_until(kafka_settings, topics, all_final(keys(vendors) | keys(orders)))

    assert len(records(basware, "matchingOrders")) == 3


async def test_unchanged_content_is_not_sent_and_an_identical_repost_counts_as_delivered(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes = topics[Topic.VISMA_CHANGES]

    def attempts(latest: dict[tuple[Entity, str], DeliveryResult]) -> int | None:
        found = latest.get((Entity.SUPPLIER, "S1"))
        return None if found is None else found.attempts

    async with writer_world() as (basware, _, connection):
        tenant = connection.tenant
        first = vendor(tenant, "S1")
        async with running_writer(kafka_settings, database_url, topics, connection):
            await publish(kafka_settings, changes, [first])
            await results_until(kafka_settings, topics, all_final(keys([first])))
            posts = len(requests(basware, "POST", "/v1/vendors"))

            # The same content again (a re-poll, a replay): skipped by its payload hash.
            await publish(kafka_settings, changes, [first])
            found = await results_until(
                kafka_settings, topics, lambda latest: attempts(latest) == 0
            )
            skipped = by_record(found)[(Entity.SUPPLIER, "S1")]
            assert skipped.outcome is Outcome.DELIVERED
            assert skipped.reasons[0].category == "Unchanged"
            assert len(requests(basware, "POST", "/v1/vendors")) == posts

            # Without the writer's memory it is posted, and Basware's NotProcessed (identical
            # to what it has) is a delivery.
            await fetch(database_url, "DELETE FROM writer_accepted")
            await publish(kafka_settings, changes, [first])
            await results_until(kafka_settings, topics, lambda latest: attempts(latest) == 1)
    assert len(requests(basware, "POST", "/v1/vendors")) == posts + 1
    tenant_state = basware.state.tenant_of(Region.EU, BASWARE_CLIENT.bwcid)
    last = max(tenant_state.requests.values(), key=lambda r: r.received_at)
    assert [item.status.value for item in last.items] == ["NotProcessed"]

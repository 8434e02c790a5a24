"""What the master-data tests share: the seeded company's reference records, the POSTs
Basware took and the codes it holds, a sync that must refuse nothing, and what moving
segment 1 from cost center to project re-sends."""

from __future__ import annotations

from conftest import TopicNames
from pipeline_support import covers, latest_results, pipeline, read_events
from sandbox_support import (
    BASWARE_CLIENT,
    VISMA_COMPANY,
    sandbox_connection,
    sandboxes,
    seeded_records,
)
from writer_support import records, until

from basware_sandbox import BaswareSandbox, Region
from basware_sandbox.records import RequestRecord
from mlconnector.contracts import Entity, Outcome
from mlconnector.mapping import CodingLayout
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from visma_sandbox.config import SeedOptions
from visma_sandbox.runner import RunningSandbox

MASTER_APIS = ("paymentTerms", "taxCodes", "accounts", "costCenters", "projects")
RecordRef = tuple[str, Entity, str]


def reference_records(visma: RunningSandbox) -> set[RecordRef]:
    """(tenant, entity, id) of the reference data the seeded company holds."""
    company = visma.state.company(VISMA_COMPANY)
    found: set[RecordRef] = {
        (VISMA_COMPANY, entity, company.table(name).spec.key_text(stored.key))
        for entity, name in (
            (Entity.CREDIT_TERM, "creditterm"),
            (Entity.VAT_CATEGORY, "vatcategory"),
            (Entity.ACCOUNT, "account"),
        )
        for stored in company.table(name)
    }
    for stored in company.table("dimension"):
        dimension = stored.record.model_dump()
        for segment in dimension["segments"]:
            for value in segment["segment_values"]:
                value_id = f"{dimension['id']}/{segment['segment_id']}/{value['value_id']}"
                found.add((VISMA_COMPANY, Entity.DIMENSION_VALUE, value_id))
    return found


def basware_requests(basware: BaswareSandbox) -> list[RequestRecord]:
    """Every POST Basware took for the test's customer, in the order it took them."""
    tenant = basware.state.tenant_of(Region.EU, BASWARE_CLIENT.bwcid)
    return sorted(tenant.requests.values(), key=lambda r: r.received_at)


def codes(basware: BaswareSandbox, api: str, field: str) -> set[str]:
    return {str(r[field]) for r in records(basware, api)}


async def synced_without_refusals(
    kafka: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    seed: SeedOptions,
    layout: CodingLayout | None = None,
) -> BaswareSandbox:
    """Runs the pipeline over the seeded company (with this coding layout) until every
    record has its result and an invoice is in Basware; asserts everything was delivered
    and no request failed in requestStatus. The Basware sandbox, to look at."""
    async with sandboxes(seed=seed) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        if layout is not None:
            connection = connection.model_copy(update={"coding": layout})
        expected = seeded_records(visma) | reference_records(visma)
        async with pipeline(kafka, database_url, topics, connection):
            events = await read_events(kafka, topics[Topic.BASWARE_RESULTS], covers(expected))
            await until(lambda: bool(basware.state.documents()), "an accounting document")
    results = latest_results(events)
    assert {r.outcome for r in results.values()} == {Outcome.DELIVERED}, [
        (r.entity_id, r.reasons) for r in results.values() if r.outcome != Outcome.DELIVERED
    ]
    requests = basware_requests(basware)
    assert {r.status for r in requests} == {"Success"}, [
        (r.api, [e.message for i in r.items for e in i.errors]) for r in requests
    ]
    return basware


async def until_segment_1_is_projects(basware: BaswareSandbox) -> None:
    """Waits until segment 1's values are Basware projects, every order line is coded to a
    project and no cost center, and Basware has processed every request."""
    await until(
        lambda: codes(basware, "projects", "projectCode") == {"0", "1", "2", "9"},
        "segment 1 as projects",
    )

    def recoded() -> bool:
        return all(
            line["orderLineCoding"][0].get("projectCode") is not None
            and line["orderLineCoding"][0].get("costCenterCode") is None
            for line in records(basware, "matchingOrderLines")
        )

    await until(recoded, "every order line coded to a project")
    await until(
        lambda: all(r.status != "InProgress" for r in basware_requests(basware)),
        "every request processed",
    )


def assert_only_recoded_re_sent(basware: BaswareSandbox, sent_before: int, orders: int) -> None:
    """After the move of segment 1 to project: only its values (as projects) and the orders
    were posted again, and Basware took them all."""
    after = basware_requests(basware)[sent_before:]
    assert {r.status for r in after} == {"Success"}
    assert {r.api for r in after} == {"projects", "matchingOrders", "matchingOrderLines"}
    resent_projects = {i.external_code for r in after if r.api == "projects" for i in r.items}
    assert resent_projects == {"PRJ-0", "PRJ-1", "PRJ-2", "PRJ-9"}
    resent_orders = {i.external_code for r in after if r.api == "matchingOrders" for i in r.items}
    assert len(resent_orders) == orders

"""Replay and lineage on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from audit_support import (
    TENANT,
    fetch_log,
    fill_log,
    logged,
    order_change,
    read_records,
    result_for,
    running_audit_store,
    supplier_change,
    wait_for_log,
)
from conftest import TopicNames
from pipeline_support import pipeline
from pydantic import SecretStr
from sandbox_support import BASWARE_CLIENT, VISMA_COMPANY, sandbox_connection, sandboxes
from typer.testing import CliRunner, Result

from basware_sandbox import Region, documents
from mlconnector.audit.lineage import Stage, record_lineage
from mlconnector.audit.replay import (
    FailedRecords,
    OneEvent,
    OneRecord,
    ReplayAction,
    ReplayReport,
    ReplaySelection,
    kafka_replay_publisher,
    replay,
    replay_event_id,
)
from mlconnector.audit.rows import ReceivedMessage, log_entry
from mlconnector.audit.status import RecordState, RecordStatus, StatusFilter, record_statuses
from mlconnector.audit.verify import verify_log
from mlconnector.contracts import (
    ChangeEvent,
    Entity,
    Event,
    Outcome,
    VismaNotification,
    parse_event,
)
from mlconnector.kafka import HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_REPLAY_OF, make_broker
from mlconnector.kafka import publish_events as publish
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector_cli.__main__ import app as cli
from visma_sandbox.config import SeedOptions

pytestmark = pytest.mark.integration


async def run_replay(
    database_url: str,
    kafka: KafkaSettings,
    topic: str,
    selection: ReplaySelection,
    *,
    dry_run: bool = False,
    force: bool = False,
) -> ReplayReport:
    conn = await asyncpg.connect(database_url)
    try:
        if dry_run:
            return await replay(conn, selection, None, dry_run=True)
        async with kafka_replay_publisher(kafka, topic) as publisher:
            return await replay(
                conn, selection, publisher, force=force, force_reason="test" if force else None
            )
    finally:
        await conn.close()


async def mlconnector(
    args: Sequence[str], database_url: str, kafka: KafkaSettings | None = None
) -> Result:
    env = {"DATABASE_URL": database_url}
    if kafka is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
    # The command runs its own event loop: off this test's loop, in a thread.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


def headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


async def test_failed_and_rejected_records_are_replayed_with_their_key(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes, results = topics[Topic.VISMA_CHANGES], topics[Topic.BASWARE_RESULTS]
    rejected = supplier_change("S1", "N" * 251)
    failed = supplier_change("S2")
    delivered = supplier_change("S3")
    parked = order_change("PO1", "S1")
    failed_order = order_change("PO2", "S2")
    other_tenant = supplier_change("S9", tenant="2000002")
    answered_before_a_fix = supplier_change("S4", "Old")
    placed: list[tuple[Event, str, int, int]] = [
        (rejected, changes, 0, 0),
        (failed, changes, 0, 1),
        (delivered, changes, 0, 2),
        (failed_order, changes, 0, 3),
        (parked, changes, 0, 7),
        (other_tenant, changes, 0, 4),
        (answered_before_a_fix, changes, 0, 5),
        (result_for(rejected, Outcome.REJECTED, "too long"), results, 0, 0),
        (result_for(failed, Outcome.FAILED), results, 0, 1),
        (result_for(delivered, Outcome.DELIVERED), results, 0, 2),
        (result_for(failed_order, Outcome.FAILED), results, 0, 3),
        (result_for(parked, Outcome.PARKED), results, 0, 7),
        (result_for(other_tenant, Outcome.REJECTED), results, 0, 4),
        (result_for(answered_before_a_fix, Outcome.REJECTED), results, 0, 5),
        # A newer version is on its way: no replay of the old one.
        (supplier_change("S4", "Fixed"), changes, 0, 6),
    ]
    await fill_log(database_url, logged(placed))

    everything = await run_replay(
        database_url, kafka_settings, changes, FailedRecords(), dry_run=True
    )
    # Vendors before the orders that depend on them; a parked order waits in the writer.
    assert [i.entity_id for i in everything.items] == ["S1", "S2", "S9", "PO2"]
    assert everything.count(ReplayAction.WOULD_REPLAY) == 4

    report = await run_replay(database_url, kafka_settings, changes, FailedRecords(tenant=TENANT))
    assert [i.entity_id for i in report.items] == ["S1", "S2", "PO2"]
    assert report.count(ReplayAction.REPLAYED) == 3
    originals = {e.event_id: e for e in (rejected, failed, failed_order)}
    for record in await read_records(kafka_settings, changes, 3):
        sent = headers(record)
        original = originals[sent[HEADER_REPLAY_OF]]
        assert sent[HEADER_EVENT_TYPE] == original.event_type
        assert sent[HEADER_EVENT_ID] == replay_event_id(original.event_id, 1)
        assert record.key == original.key.encode()
        body = parse_event(sent[HEADER_EVENT_TYPE], record.value or b"")
        assert isinstance(body, ChangeEvent)
        assert body.event_id == sent[HEADER_EVENT_ID]
        assert body.content_hash == original.content_hash


async def test_a_record_delivered_since_is_not_replayed(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes, results = topics[Topic.VISMA_CHANGES], topics[Topic.BASWARE_RESULTS]
    first = supplier_change("S1", "N" * 251)
    fixed = supplier_change("S1", "Fixed AS")
    placed: list[tuple[Event, str, int, int]] = [
        (first, changes, 0, 0),
        (result_for(first, Outcome.REJECTED, "too long"), results, 0, 0),
        (fixed, changes, 0, 1),
        (result_for(fixed, Outcome.DELIVERED), results, 0, 1),
    ]
    await fill_log(database_url, logged(placed))

    by_record = await run_replay(
        database_url, kafka_settings, changes, OneRecord(entity=Entity.SUPPLIER, entity_id="S1")
    )
    assert by_record.count(ReplayAction.REPLAYED) == 0
    assert (by_record.items[0].reason or "").startswith("already delivered")
    # The rejected version, by its id: sending it now would overwrite the fix.
    old = await run_replay(database_url, kafka_settings, changes, OneEvent(event_id=first.event_id))
    assert old.count(ReplayAction.REPLAYED) == 0
    assert old.items[0].reason == f"superseded by a newer change ({fixed.event_id})"

    said = await mlconnector(
        ["replay", "record", "--entity", "supplier", "--id", "S1", "--to-topic", changes],
        database_url,
        kafka_settings,
    )
    assert said.exit_code == 0, said.output
    assert "already delivered" in said.output
    assert "0 replayed, 1 skipped." in said.output

    forced = await run_replay(
        database_url,
        kafka_settings,
        changes,
        OneRecord(entity=Entity.SUPPLIER, entity_id="S1"),
        force=True,
    )
    assert forced.count(ReplayAction.REPLAYED) == 1
    (record,) = await read_records(kafka_settings, changes, 1)
    assert headers(record)[HEADER_REPLAY_OF] == fixed.event_id


async def test_what_has_no_result_yet_is_replayed_by_hand_vendors_first(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes, results = topics[Topic.VISMA_CHANGES], topics[Topic.BASWARE_RESULTS]
    unanswered_order = order_change("PO1", "S1")
    unanswered = supplier_change("S1")
    delivered = supplier_change("S2")
    parked = order_change("PO2", "S2")
    failed = supplier_change("S3")
    placed: list[tuple[Event, str, int, int]] = [
        (unanswered_order, changes, 0, 0),
        (unanswered, changes, 0, 1),
        (delivered, changes, 0, 2),
        (parked, changes, 0, 3),
        (failed, changes, 0, 4),
        (result_for(delivered, Outcome.DELIVERED), results, 0, 0),
        (result_for(parked, Outcome.PARKED), results, 0, 1),
        (result_for(failed, Outcome.FAILED), results, 0, 2),
    ]
    await fill_log(database_url, logged(placed))

    said = await mlconnector(
        ["replay", "pending", "--to-topic", changes], database_url, kafka_settings
    )
    assert said.exit_code == 0, said.output
    assert "2 replayed, 0 skipped." in said.output
    sent = await read_records(kafka_settings, changes, 2)
    # The vendor before its order, whatever their order in the log.
    assert [headers(r)[HEADER_REPLAY_OF] for r in sent] == [
        unanswered.event_id,
        unanswered_order.event_id,
    ]
    assert "replay-reason" not in headers(sent[0])  # a person asked for it


async def test_an_offset_range_is_replayed_from_the_log(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes, results = topics[Topic.VISMA_CHANGES], topics[Topic.BASWARE_RESULTS]
    before, failed, delivered, unanswered, after = (supplier_change(f"S{i}") for i in range(5))
    entries = logged(
        [
            (before, changes, 2, 10),
            (failed, changes, 2, 11),
            (delivered, changes, 2, 13),
            (unanswered, changes, 2, 14),
            (after, changes, 2, 15),
            (result_for(failed, Outcome.FAILED), results, 2, 0),
            (result_for(delivered, Outcome.DELIVERED), results, 2, 1),
        ]
    )
    garbage = ReceivedMessage(
        topic=changes,
        partition=2,
        offset=12,
        key=b"?",
        headers=(),
        value=b"{not json",
        kafka_time=None,
        arrived_at=entries[0].message.arrived_at,
    )
    await fill_log(database_url, [*entries, log_entry(garbage)])

    result = await mlconnector(
        [
            *("replay", "offsets", "--topic", changes, "--partition", "2"),
            *("--from", "11", "--to", "14", "--to-topic", changes),
        ],
        database_url,
        kafka_settings,
    )
    assert result.exit_code == 0, result.output
    assert "2 replayed, 1 skipped, 1 not replayable." in result.output
    assert "cannot replay  " in result.output
    assert "not a change event (no event type)" in result.output
    only_garbage = await mlconnector(
        ["replay", "record", "--event-id", f"kafka:{changes}/2/12", "--to-topic", changes],
        database_url,
        kafka_settings,
    )
    assert only_garbage.exit_code == 1
    assert "0 replayed, 0 skipped, 1 not replayable." in only_garbage.output
    assert "already delivered" in result.output
    sent = await read_records(kafka_settings, changes, 2)
    assert sorted(headers(r)[HEADER_REPLAY_OF] for r in sent) == sorted(
        [failed.event_id, unanswered.event_id]
    )
    assert {r.key for r in sent} == {failed.key.encode(), unanswered.key.encode()}


async def test_replays_come_back_into_the_log_and_lineage_tells_the_whole_story(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    changes, results = topics[Topic.VISMA_CHANGES], topics[Topic.BASWARE_RESULTS]
    change = supplier_change("S1", "N" * 251)
    broker = make_broker(kafka_settings, client_id="test-producer")
    async with running_audit_store(kafka_settings, database_url, topics), broker:
        await broker.start()
        await publish(broker, changes, [change])
        await publish(broker, results, [result_for(change, Outcome.REJECTED, "too long")])
        await publish(
            broker,
            topics[Topic.VISMA_NOTIFICATIONS],
            [
                VismaNotification(
                    event_id="webhook-1",
                    tenant=TENANT,
                    notification_id="n-1",
                    entity=Entity.SUPPLIER,
                    event="update",
                    record_key="S1",
                )
            ],
        )
        await wait_for_log(database_url, "SELECT 1 FROM audit_log", count=3)

        listed = await mlconnector(
            ["audit", "status", "--state", "rejected", "--state", "failed"], database_url
        )
        assert "S1" in listed.output
        assert "too long" in listed.output
        replayed = await mlconnector(
            ["replay", "failed", "--to-topic", changes], database_url, kafka_settings
        )
        assert replayed.exit_code == 0, replayed.output
        assert "1 replayed, 0 skipped." in replayed.output

        # The replay went through the topic and into the log like any change.
        query = "SELECT payload FROM audit_log WHERE replay_of = $1"
        await wait_for_log(database_url, query, change.event_id)
        (row,) = await fetch_log(database_url, query, change.event_id)
        again = parse_event("SupplierChanged", row["payload"])
        assert isinstance(again, ChangeEvent)
        await publish(broker, results, [result_for(again, Outcome.DELIVERED)])
        await wait_for_log(database_url, "SELECT 1 FROM audit_log", count=5)

    conn = await asyncpg.connect(database_url)
    try:
        steps = await record_lineage(conn, Entity.SUPPLIER, "S1")
        assert (await verify_log(conn)).ok
    finally:
        await conn.close()
    assert [s.stage for s in steps] == [
        Stage.VISMA_CHANGE,
        Stage.BASWARE_RESULT,
        Stage.VISMA_WEBHOOK,
        Stage.REPLAY,
        Stage.BASWARE_RESULT,
    ]
    assert "rejected" in steps[1].detail
    assert "too long" in steps[1].detail
    assert steps[3].event_id == again.event_id
    assert "delivered" in steps[4].detail

    shown = await mlconnector(["lineage", "supplier", "S1"], database_url)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("supplier S1 (tenant 1000001): 5 events")
    # Under the title and the header row, one row per step, the stage in the second column.
    assert [re.split(r"\s{2,}", line)[1] for line in lines[2:]] == [s.stage for s in steps]
    status = await mlconnector(["audit", "status", "--id", "S1"], database_url)
    assert "delivered" in status.output
    unknown = await mlconnector(["lineage", "supplier", "NOPE"], database_url)
    assert unknown.exit_code == 1
    assert "holds nothing about supplier NOPE" in unknown.output


async def test_commands_fail_with_one_plain_line(database_url: str) -> None:
    unreachable = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"
    for args in (["audit", "verify"], ["lineage", "supplier", "S1"], ["replay", "failed"]):
        result = await mlconnector(args, unreachable)
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "127.0.0.1:1/nowhere" in result.output
        assert "hunter2" not in result.output
    empty = await mlconnector(["audit", "status"], database_url)
    assert empty.exit_code == 1
    assert "audit-store has not run against this database" in empty.output


async def wait_for_state(
    database_url: str, entity: Entity, entity_id: str, states: set[RecordState]
) -> RecordStatus:
    """Until the record's status (derived from the log) is one of `states`."""
    # A guard against a hang, not a timed assertion.
    async with asyncio.timeout(90):
        while True:
            conn = await asyncpg.connect(database_url)
            try:
                if await conn.fetchval("SELECT to_regclass('audit_record_status') IS NOT NULL"):
                    found = await record_statuses(
                        conn, StatusFilter(entity=entity, entity_id=entity_id)
                    )
                    if found and found[0].state in states:
                        return found[0]
            finally:
                await conn.close()
            await asyncio.sleep(0.1)


async def test_a_rejected_vendor_fixed_in_visma_and_a_failed_one_replayed_end_delivered(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The whole story on the sandboxes, with the services' own apps. Two vendors do not go
    through: one Basware cannot take (a name over 250 characters), one sent while the Basware
    secret was wrong. The first is fixed in Visma, and the reader sends the fixed version by
    itself: replaying it is a no-op. The second, its cause fixed outside Visma, is replayed.
    Both end delivered, and each one's lineage tells its story."""
    seed = SeedOptions(companies=1, suppliers=2, purchase_orders=0, invoices=0)
    async with sandboxes(seed=seed) as (basware, visma):
        company = visma.state.company(VISMA_COMPANY)
        table = company.table("supplier")
        too_long, unlucky = sorted(table.spec.key_text(stored.key) for stored in table)
        company.update("supplier", too_long, {"name": "N" * 251})
        # The story is the vendors': master data (kept in Basware by hand here) is not
        # synced, and the suppliers name no payment term a vendor would wait for.
        for number in (too_long, unlucky):
            company.update("supplier", number, {"creditTerms": None})
        connection = sandbox_connection(basware, visma).model_copy(
            update={"entities": (Entity.SUPPLIER, Entity.PURCHASE_ORDER, Entity.SUPPLIER_INVOICE)}
        )
        wrong_secret = connection.model_copy(
            update={
                "basware": connection.basware.model_copy(
                    update={"client_secret": SecretStr("not-the-secret")}
                )
            }
        )
        async with running_audit_store(kafka_settings, database_url, topics):
            async with pipeline(kafka_settings, database_url, topics, wrong_secret):
                refused = await wait_for_state(
                    database_url, Entity.SUPPLIER, too_long, {RecordState.REJECTED}
                )
                await wait_for_state(database_url, Entity.SUPPLIER, unlucky, {RecordState.FAILED})
            assert refused.reasons[0].field == "name"

            company.update("supplier", too_long, {"name": "Fjordkraft Leverandør AS"})
            async with pipeline(kafka_settings, database_url, topics, connection):
                await wait_for_state(
                    database_url, Entity.SUPPLIER, too_long, {RecordState.DELIVERED}
                )
                changes = topics[Topic.VISMA_CHANGES]
                listed = await mlconnector(
                    ["replay", "failed", "--dry-run", "--to-topic", changes], database_url
                )
                assert f"would replay  {TENANT}  supplier  {unlucky}" in listed.output
                assert too_long not in listed.output
                replayed = await mlconnector(
                    ["replay", "failed", "--to-topic", changes], database_url, kafka_settings
                )
                assert "1 replayed, 0 skipped." in replayed.output, replayed.output
                await wait_for_state(
                    database_url, Entity.SUPPLIER, unlucky, {RecordState.DELIVERED}
                )
                again = await mlconnector(
                    ["replay", "record", "--entity", "supplier", "--id", too_long],
                    database_url,
                    kafka_settings,
                )
                assert "already delivered" in again.output

    conn = await asyncpg.connect(database_url)
    try:
        fixed_story = await record_lineage(conn, Entity.SUPPLIER, too_long)
        replayed_story = await record_lineage(conn, Entity.SUPPLIER, unlucky)
        assert (await verify_log(conn)).ok
    finally:
        await conn.close()
    assert [(s.stage, s.detail.split(" ")[0]) for s in fixed_story] == [
        (Stage.VISMA_CHANGE, "last"),
        (Stage.BASWARE_RESULT, "rejected"),
        (Stage.VISMA_CHANGE, "last"),
        (Stage.BASWARE_RESULT, "delivered"),
    ]
    assert "(name)" in fixed_story[1].detail
    assert [(s.stage, s.detail.split(" ")[0]) for s in replayed_story] == [
        (Stage.VISMA_CHANGE, "last"),
        (Stage.BASWARE_RESULT, "failed"),
        (Stage.REPLAY, "replay"),
        (Stage.BASWARE_RESULT, "delivered"),
    ]
    vendors = basware.state.records(Region.EU, BASWARE_CLIENT.bwcid, "vendors", accepted=True)
    assert {too_long, unlucky} <= {str(v["vendorCode"]) for v in vendors}


async def wait_for_status(
    database_url: str, entity: Entity, entity_id: str, done: Callable[[RecordStatus], bool]
) -> RecordStatus:
    """Until the record's status (derived from the log) satisfies `done`."""
    # A guard against a hang, not a timed assertion.
    async with asyncio.timeout(90):
        while True:
            conn = await asyncpg.connect(database_url)
            try:
                if await conn.fetchval("SELECT to_regclass('audit_record_status') IS NOT NULL"):
                    found = await record_statuses(
                        conn, StatusFilter(entity=entity, entity_id=entity_id)
                    )
                    if found and done(found[0]):
                        return found[0]
            finally:
                await conn.close()
            await asyncio.sleep(0.1)


def in_category(state: RecordState, category: str) -> Callable[[RecordStatus], bool]:
    return lambda s: s.state == state and bool(s.reasons) and s.reasons[0].category == category


async def test_an_invoice_edited_in_visma_after_upload_stays_one_basware_document(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The Visma edit is an exception naming Basware's document and its state, not a second
    document; a forced replay is refused while that document is live and uploads the edited
    version once it is rejected."""
    seed = SeedOptions(companies=1, suppliers=1, purchase_orders=0, invoices=1)
    changes = topics[Topic.VISMA_CHANGES]
    async with sandboxes(seed=seed) as (basware, visma):
        company = visma.state.company(VISMA_COMPANY)
        (stored,) = company.table("supplierinvoice")
        key = company.table("supplierinvoice").spec.key_text(stored.key)
        body = stored.record.model_dump(by_alias=True)
        invoice_id = f"{body['documentType']}/{body['referenceNumber']}"
        edited = float(body["amount"]) + 100
        async with pipeline(
            kafka_settings, database_url, topics, sandbox_connection(basware, visma)
        ):
            await wait_for_state(
                database_url, Entity.SUPPLIER_INVOICE, invoice_id, {RecordState.DELIVERED}
            )
            async with asyncio.timeout(30):
                while not basware.state.documents():
                    await asyncio.sleep(0.05)
            (document,) = basware.state.documents()
            document_id = document.document.invoice_id

            company.update("supplierinvoice", key, {"amount": edited})
            changed = await wait_for_state(
                database_url, Entity.SUPPLIER_INVOICE, invoice_id, {RecordState.EXCEPTION}
            )
            (why,) = changed.reasons
            assert why.category == "ChangedAfterUpload"
            assert f"Basware document {document_id} is in state InApprovalProcess" in why.message
            assert len(basware.state.documents()) == 1
            force = ["replay", "record", "--entity", "supplier_invoice", "--id", invoice_id]
            unexplained = await mlconnector([*force, "--force"], database_url, kafka_settings)
            assert unexplained.exit_code != 0
            assert "--force needs --reason" in unexplained.output
            reason = ["--force", "--reason", "supplier sent a corrected invoice"]
            forced = await mlconnector(
                [*force, *reason, "--to-topic", changes], database_url, kafka_settings
            )
            assert "1 replayed" in forced.output, forced.output
            refused = await wait_for_status(
                database_url,
                Entity.SUPPLIER_INVOICE,
                invoice_id,
                in_category(RecordState.EXCEPTION, "ReuploadRefused"),
            )
            assert document_id in refused.reasons[0].message
            assert len(basware.state.documents()) == 1

            documents.reject(basware.state, document_id, "amount corrected in Visma")
            again = await mlconnector(
                [*force, *reason, "--to-topic", changes], database_url, kafka_settings
            )
            assert "1 replayed" in again.output, again.output
            await wait_for_state(
                database_url, Entity.SUPPLIER_INVOICE, invoice_id, {RecordState.DELIVERED}
            )
            async with asyncio.timeout(30):
                while len(basware.state.documents()) < 2:
                    await asyncio.sleep(0.05)
    states = sorted(d.workflow.value for d in basware.state.documents())
    assert states == ["InApproval", "Rejected"]
    live = next(d for d in basware.state.documents() if d.document.invoice_id != document_id)
    assert abs(live.document.gross_sum or 0) == edited

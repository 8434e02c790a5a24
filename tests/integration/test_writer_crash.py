"""Crashes: a writer killed while Basware processes its requests, and SmartPDF uploads whose
outcome was lost. Nothing is lost, and the sandbox's request log shows nothing sent twice."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from conftest import TopicNames
from sandbox_support import connection_environment
from writer_support import (
    QUICK,
    all_final,
    by_record,
    fetch,
    keys,
    publish,
    quick_settings,
    requests,
    results_until,
    running_writer,
    supplier_story,
    until,
    writer_world,
)

from basware_sandbox import BaswareSandbox, FaultKind, FaultRule
from mlconnector.connections import Connection
from mlconnector.contracts import DeliveryResult, Entity
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic

pytestmark = pytest.mark.integration


def writer_environment(
    kafka: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    connection: Connection,
    basware: BaswareSandbox,
) -> dict[str, str]:
    """`basware-writer` as deployed: everything from the environment (one connection)."""
    settings = {f"BASWARE_WRITER_{name.upper()}": str(value) for name, value in QUICK.items()}
    return {
        **settings,
        # It waits on requestStatus for as long as the test needs to kill it.
        "BASWARE_WRITER_STATUS_WAIT_SECONDS": "120",
        "BASWARE_WRITER_CHANGES_TOPIC": topics[Topic.VISMA_CHANGES],
        "BASWARE_WRITER_RESULTS_TOPIC": topics[Topic.BASWARE_RESULTS],
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
        "DATABASE_URL": database_url,
        "MLC_HTTP_PORT": "0",
        **connection_environment(connection, basware),
        "PATH": "/usr/bin:/bin",
    }


async def test_a_writer_killed_mid_batch_is_followed_to_the_end_without_a_second_post(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    """A writer process posts the vendors and waits for Basware, which holds them: SIGKILL.
    Its successor follows the same requests (recorded in PostgreSQL) instead of posting again,
    then delivers the orders and invoices that waited for those vendors."""
    async with writer_world() as (basware, _, connection):
        stories = [e for n in range(1, 6) for e in supplier_story(connection.tenant, f"S{n}")]
        basware.state.pause_processing()
        await publish(kafka_settings, topics[Topic.VISMA_CHANGES], stories)
        environment = writer_environment(kafka_settings, database_url, topics, connection, basware)
        with (tmp_path / "writer.log").open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "basware_writer",
                env=environment,
                stdout=output,
                stderr=output,
            )
            try:
                await until(
                    lambda: any(
                        e.path.startswith("/v1/requestStatus/") for e in basware.state.request_log
                    ),
                    "the writer process waits on Basware's requestStatus",
                )
                pending = await fetch(database_url, "SELECT entity_id FROM writer_pending")
                assert {r["entity_id"] for r in pending} == {f"S{n}" for n in range(1, 6)}
            finally:
                process.kill()
                await process.wait()
        basware.state.resume_processing()

        async with running_writer(kafka_settings, database_url, topics, connection):
            await results_until(kafka_settings, topics, all_final(keys(stories)))
        left = await fetch(
            database_url,
            "SELECT (SELECT count(*) FROM writer_pending) + (SELECT count(*) FROM writer_parked)"
            " AS n",
        )

    assert left[0]["n"] == 0
    assert len(requests(basware, "POST", "/v1/vendors")) == 1
    assert len(requests(basware, "POST", "/v1/matchingOrders")) == 1
    assert len(requests(basware, "POST", "/v1/matchingOrderLines")) == 1
    assert len(requests(basware, "PUT", "/_s3/uploads/")) == 5
    numbers = [str(d.document.invoice_number) for d in basware.state.documents()]
    assert sorted(numbers) == [f"F-INVS{n}" for n in range(1, 6)]


async def test_an_upload_that_got_no_answer_is_looked_for_then_sent_once(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The connection drops on the PDF's PUT: whether Basware has the document is unknown.
    The follow-up looks for it, does not find it, and uploads it again, once."""
    async with writer_world() as (basware, _, connection):
        basware.state.add_fault(
            FaultRule(kind=FaultKind.DROP, path_prefix="/_s3/uploads/", remaining=1)
        )
        story = supplier_story(connection.tenant, "S1")
        settings = quick_settings(upload_confirm_seconds=0.3)
        async with running_writer(kafka_settings, database_url, topics, connection, settings):
            await publish(kafka_settings, topics[Topic.VISMA_CHANGES], story)
            await results_until(kafka_settings, topics, all_final(keys(story)))

    assert len(requests(basware, "PUT", "/_s3/uploads/")) == 1
    assert [d.document.invoice_number for d in basware.state.documents()] == ["F-INVS1"]


INVOICE = (Entity.SUPPLIER_INVOICE, "Invoice/INVS1")


def found_in_basware(latest: dict[tuple[Entity, str], DeliveryResult]) -> bool:
    reasons = latest[INVOICE].reasons if INVOICE in latest else ()
    return bool(reasons) and reasons[0].category == "Upload"


async def test_an_upload_done_before_a_crash_is_found_in_basware_not_sent_again(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The PDF reached Basware, then the writer died before recording it (simulated): the
    follow-up finds the document in Basware and counts it delivered without a second upload."""
    async with writer_world() as (basware, _, connection):
        story = supplier_story(connection.tenant, "S1")
        async with running_writer(kafka_settings, database_url, topics, connection):
            await publish(kafka_settings, topics[Topic.VISMA_CHANGES], story)
            await results_until(kafka_settings, topics, all_final(keys(story)))
            await fetch(
                database_url,
                "WITH reset AS (UPDATE writer_uploads SET state = 'uploading', claimed_by = NULL) "
                "DELETE FROM writer_accepted WHERE entity = 'supplier_invoice'",
            )

            found = await results_until(kafka_settings, topics, found_in_basware)
        accepted = await fetch(
            database_url,
            "SELECT count(*) AS n FROM writer_accepted WHERE entity = 'supplier_invoice'",
        )

    assert by_record(found)[INVOICE].outcome == "delivered"
    assert accepted[0]["n"] == 1
    assert len(requests(basware, "PUT", "/_s3/uploads/")) == 1
    assert len(basware.state.documents()) == 1

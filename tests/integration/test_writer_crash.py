"""Crashes: a writer killed while Basware processes its requests, and SmartPDF uploads whose
outcome was lost. Nothing is lost, and the sandbox's request log shows nothing sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TopicNames
from sandbox_support import BASWARE_CLIENT, connection_environment
from writer_support import (
    QUICK,
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
    until,
    vendor,
    writer_world,
)

from basware_sandbox import BaswareSandbox, FaultKind, FaultRule, Region
from basware_writer.settings import WriterSettings
from mlconnector.basware.batching import VENDOR_BATCH_LIMIT
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


@contextlib.asynccontextmanager
async def killed_writer(environment: dict[str, str], log: Path) -> AsyncIterator[None]:
    """`basware-writer` as its own process while the block runs, then SIGKILL."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "basware_writer", env=environment, stdout=output, stderr=output
        )
        try:
            yield
        finally:
            process.kill()
            await process.wait()


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
        async with killed_writer(environment, tmp_path / "writer.log"):
            await until(
                lambda: any(
                    e.path.startswith("/v1/requestStatus/") for e in basware.state.request_log
                ),
                "the writer process waits on Basware's requestStatus",
            )
            pending = await fetch(database_url, "SELECT entity_id FROM writer_pending")
            assert {r["entity_id"] for r in pending} == {f"S{n}" for n in range(1, 6)}
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


# Invoices of the batch the writer is killed in the middle of, uploaded a few at a time.
INVOICES = 12


def puts_done(basware: BaswareSandbox) -> int:
    return len(requests(basware, "PUT", "/_s3/uploads/"))


def between_puts(basware: BaswareSandbox) -> bool:
    """Some invoices are in Basware, and every upload URL handed out has had its PUT: the
    writer waits on the (slowed) requests for the next URLs, no PDF is on its way."""
    urls = len(requests(basware, "POST", "/v2/smartpdf/invoiceUpload"))
    return puts_done(basware) >= 3 and urls == puts_done(basware)


# How long the successor honours the claims of a writer that stopped beating: far past the
# test's guard, so only the dead writer's ended session can free them.
HONOURED_FOR_SECONDS = 3600.0


async def test_a_writer_killed_in_the_middle_of_an_invoice_batch_delays_invoices_by_seconds(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    """The writer process uploads a batch of invoices two at a time (Basware is slow to hand
    out upload URLs) and is killed with SIGKILL when some are in Basware and none is on
    its way. Its successor, with the default UPLOAD_CONFIRM_SECONDS of 15 minutes, finishes
    the batch well within the guard of `until`: invoices never started are claimed and
    uploaded by the re-delivered batch, the dead writer's claims (URL asked for, PDF never
    sent) are taken over once Basware is seen not to have them. Every invoice is in Basware
    once (its documents and the PUTs in its request log). The successor would honour a
    silent writer's claims for an hour: the dead writer's claims are free because its
    database session (and the presence lock in it) ended, not because it missed beats."""
    async with writer_world() as (basware, _, connection):
        stories = [
            e for n in range(1, INVOICES + 1) for e in supplier_story(connection.tenant, f"S{n}")
        ]
        basware.state.add_fault(
            FaultRule(kind=FaultKind.SLOW, path_prefix="/v2/smartpdf/", delay_ms=300)
        )
        await publish(kafka_settings, topics[Topic.VISMA_CHANGES], stories)
        environment = {
            **writer_environment(kafka_settings, database_url, topics, connection, basware),
            "BASWARE_WRITER_INVOICE_CONCURRENCY": "2",
        }
        async with killed_writer(environment, tmp_path / "writer.log"):
            await until(lambda: between_puts(basware), "some invoices are in Basware")
        killed = time.monotonic()
        assert puts_done(basware) < INVOICES

        successor = quick_settings(
            heartbeat_seconds=WriterSettings().heartbeat_seconds,
            instance_timeout_seconds=HONOURED_FOR_SECONDS,
        )
        async with running_writer(kafka_settings, database_url, topics, connection, successor):
            await until(
                lambda: len(basware.state.documents()) == INVOICES, "every invoice is in Basware"
            )
            await results_until(kafka_settings, topics, all_final(keys(stories)))
        print(
            "writer killed mid-invoice-batch: every invoice final"
            f" {time.monotonic() - killed:.1f} s later"
        )

    assert puts_done(basware) == INVOICES
    numbers = sorted(str(d.document.invoice_number) for d in basware.state.documents())
    assert numbers == sorted(f"F-INVS{n}" for n in range(1, INVOICES + 1))
    assert len(requests(basware, "POST", "/v1/vendors")) == 1


# One more than Basware takes in one vendor POST: the vendors go in two POSTs.
VENDORS = VENDOR_BATCH_LIMIT + 1


def vendor_posts(basware: BaswareSandbox) -> Counter[str]:
    """How many vendor POSTs Basware took carried each vendor code (its own records)."""
    tenant = basware.state.tenant_of(Region.EU, BASWARE_CLIENT.bwcid)
    return Counter(
        item.external_code
        for request in tenant.requests.values()
        if request.api == "vendors"
        for item in request.items
    )


async def test_vendors_basware_took_before_a_kill_are_not_posted_again(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    """A batch's vendors go in two POSTs; one is answered, the other is held up, and the
    writer process is killed with SIGKILL once it has recorded the answered one (before the
    other is answered, so before anything of the batch is published). Its successor
    follows what Basware took instead of posting it again: each of those vendors is in
    exactly one POST."""
    async with writer_world() as (basware, _, connection):
        vendors = [vendor(connection.tenant, f"S{n}") for n in range(1, VENDORS + 1)]
        basware.state.add_fault(
            FaultRule(kind=FaultKind.SLOW, path_prefix="/v1/vendors", delay_ms=30_000, remaining=1)
        )
        await publish(kafka_settings, topics[Topic.VISMA_CHANGES], vendors)
        environment = writer_environment(kafka_settings, database_url, topics, connection, basware)
        async with killed_writer(environment, tmp_path / "writer.log"):
            await until(
                lambda: len(requests(basware, "POST", "/v1/vendors")) == 1,
                "one of the two vendor POSTs is answered",
            )
            async with asyncio.timeout(30):
                while not await fetch(database_url, "SELECT 1 FROM writer_pending LIMIT 1"):
                    await asyncio.sleep(0.02)  # until the writer recorded what Basware took
        answered = set(vendor_posts(basware))
        assert answered

        async with running_writer(kafka_settings, database_url, topics, connection):
            await results_until(kafka_settings, topics, all_final(keys(vendors)))

    posts = vendor_posts(basware)
    assert {code: posts[code] for code in answered} == dict.fromkeys(answered, 1)
    assert len(records(basware, "vendors")) == VENDORS


LOOKUP_INTERVAL = 0.5


async def test_an_upload_in_doubt_is_looked_up_at_a_pace_not_every_round(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    """The PUT of an invoice's PDF gets no answer, and the document stays out of reach (its
    confirmation time is long). The follow-up runs every 0.2 s, yet looks the invoice up in
    Basware only once per lookup interval."""
    async with writer_world() as (basware, _, connection):
        basware.state.add_fault(
            FaultRule(kind=FaultKind.DROP, path_prefix="/_s3/uploads/", remaining=1)
        )
        story = supplier_story(connection.tenant, "S1")
        settings = quick_settings(upload_lookup_interval_seconds=LOOKUP_INTERVAL)

        def lookups() -> list[float]:
            return [
                e.at
                for e in basware.state.request_log
                if e.path == "/v1/accountingDocuments/status"
            ]

        async with running_writer(kafka_settings, database_url, topics, connection, settings):
            await publish(kafka_settings, topics[Topic.VISMA_CHANGES], story)
            await until(lambda: len(lookups()) >= 3, "the invoice is looked up three times")
        found = lookups()

    gaps = [later - earlier for earlier, later in itertools.pairwise(found)]
    assert min(gaps) >= LOOKUP_INTERVAL
    assert basware.state.documents() == []

"""Master data and coding end to end (Visma sandbox -> visma-reader -> Kafka -> basware-writer
-> Basware sandbox, real broker and database): reference data lands in Basware first, order
and invoice lines arrive coded, a deactivated account is refused by name, and a changed
coding layout re-sends exactly the records it changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_env, run_cli
from conftest import TopicNames
from master_data_support import (
    MASTER_APIS,
    assert_only_recoded_re_sent,
    basware_requests,
    codes,
    reference_records,
    synced_without_refusals,
    until_segment_1_is_projects,
)
from pipeline_support import covers, latest_results, pipeline, read_events
from sandbox_support import VISMA_COMPANY, sandbox_connection, sandboxes, seeded_records
from writer_support import records, until

from mlconnector.connection_store import ConnectionStore
from mlconnector.contracts import Entity, Outcome
from mlconnector.mapping import CodingLayout, SegmentTarget
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring, generate_key
from visma_sandbox.config import SeedOptions

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=1, suppliers=4, purchase_orders=4, invoices=4)


async def test_master_data_lands_first_and_every_line_arrives_coded(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    basware = await synced_without_refusals(kafka_settings, database_url, topics, SEED)
    requests = basware_requests(basware)
    # Each kind of master data was posted before anything that names it.
    first = {api: next(i for i, r in enumerate(requests) if r.api == api) for api in MASTER_APIS}
    first_vendor = next(i for i, r in enumerate(requests) if r.api == "vendors")
    first_lines = next(i for i, r in enumerate(requests) if r.api == "matchingOrderLines")
    assert first["paymentTerms"] < first_vendor
    assert max(first.values()) < first_lines

    accounts = codes(basware, "accounts", "accountCode")
    cost_centers = codes(basware, "costCenters", "costCenterCode")
    projects = codes(basware, "projects", "projectCode")
    tax_codes = codes(basware, "taxCodes", "taxCode")
    assert codes(basware, "paymentTerms", "paymentTermCode") == {"14", "20", "30", "45"}
    # Department 9, deactivated in Visma, is in Basware too, inactive.
    assert cost_centers == {"0", "1", "2", "9"}
    assert projects == {"00", "10"}
    lines: list[dict[str, Any]] = records(basware, "matchingOrderLines")
    assert lines
    for line in lines:
        [coding] = line["orderLineCoding"]
        assert coding["accountCode"] in accounts, line
        assert coding["costCenterCode"] in cost_centers, line
        assert coding["projectCode"] in projects, line
        assert coding["taxCode"] in tax_codes, line
    for stored in basware.state.documents():
        for row in stored.document.coding_rows or []:
            assert row.account_code in accounts, row
            assert row.cost_center_code in cost_centers, row
            assert row.project_code in projects, row
            assert row.tax_code in tax_codes, row


async def test_a_segment_mapped_to_a_coding_dimension_goes_to_its_generic_list(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames
) -> None:
    # The sandbox's project segment as dimCode3: items of ACC_LIST_3, named by every line.
    layout = CodingLayout(segments={1: SegmentTarget.COST_CENTER, 2: SegmentTarget.DIM_CODE_3})
    seed = SeedOptions(companies=1, suppliers=3, purchase_orders=3, invoices=3)
    basware = await synced_without_refusals(kafka_settings, database_url, topics, seed, layout)
    requests = basware_requests(basware)
    assert "projects" not in {r.api for r in requests}
    first_list = next(i for i, r in enumerate(requests) if r.api == "lists/ACC_LIST_3")
    first_lines = next(i for i, r in enumerate(requests) if r.api == "matchingOrderLines")
    assert first_list < first_lines
    assert codes(basware, "lists/ACC_LIST_3", "text_1") == {"00", "10"}
    for line in records(basware, "matchingOrderLines"):
        [coding] = line["orderLineCoding"]
        assert coding["dimCode3"] in {"00", "10"}, line
        assert "projectCode" not in coding, line
    for stored in basware.state.documents():
        for row in stored.document.coding_rows or []:
            assert row.dim_code3 in {"00", "10"}, row


async def test_a_deactivated_account_is_inactive_in_basware_and_refused_by_name(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    seed = SeedOptions(companies=1, suppliers=2, purchase_orders=1, invoices=0)
    async with sandboxes(seed=seed) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        expected = seeded_records(visma) | reference_records(visma)
        company = visma.state.company(VISMA_COMPANY)
        async with pipeline(kafka_settings, database_url, topics, connection):
            await read_events(kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected))

            company.update("account", "4000", {"active": False})

            def inactive() -> bool:
                account = next(
                    a for a in records(basware, "accounts") if a["accountCode"] == "4000"
                )
                return account["companies"][0]["active"] is False

            await until(inactive, "account 4000 inactive in Basware")

            template = next(iter(company.table("purchaseorder"))).record
            body = template.model_dump(by_alias=True, exclude_none=True)
            body["orderNbr"] = "009001"
            company.put("purchaseorder", body)
            order = (VISMA_COMPANY, Entity.PURCHASE_ORDER, "009001")
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers({order})
            )
            result = latest_results(events)[order]
            assert result.outcome is Outcome.REJECTED
            assert any("AccountCode 4000" in r.message for r in result.reasons), result.reasons

            status = await asyncio.to_thread(
                run_cli,
                ["audit", "status", "--state", "rejected"],
                cli_env(tmp_path, DATABASE_URL=database_url),
            )
            assert status.code == 0, status.stderr
            [row] = [line for line in status.stdout.splitlines() if "009001" in line]
            assert "AccountCode 4000" in row


async def test_records_coded_to_deactivated_codes_are_refused_naming_the_codes(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    # One order and one invoice coded to account 4090 and department 9, both deactivated.
    seed = SeedOptions(companies=1, suppliers=2, purchase_orders=2, invoices=2, stale_coded=1)
    async with sandboxes(seed=seed) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        expected = seeded_records(visma) | reference_records(visma)
        stale_order = (VISMA_COMPANY, Entity.PURCHASE_ORDER, "000003")
        [stale_invoice] = [
            r for r in expected if r[1] is Entity.SUPPLIER_INVOICE and r[2].endswith("000003")
        ]
        async with pipeline(kafka_settings, database_url, topics, connection):
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected)
            )
            status = await asyncio.to_thread(
                run_cli,
                ["audit", "status", "--state", "rejected"],
                cli_env(tmp_path, DATABASE_URL=database_url),
            )
    results = latest_results(events)
    # Every other record, the deactivated codes themselves included, is delivered.
    assert {
        ref: r.outcome
        for ref, r in results.items()
        if ref not in (stale_order, stale_invoice) and r.outcome is not Outcome.DELIVERED
    } == {}
    # The order goes, and Basware refuses its lines by the inactive codes.
    order = results[stale_order]
    assert order.outcome is Outcome.REJECTED, order
    said = " ".join(r.message for r in order.reasons)
    assert "inactive AccountCode 4090" in said, order.reasons
    assert "inactive CostCenterCode 9" in said, order.reasons
    # The invoice is not uploaded (it could not be recoded once in Basware): refused here.
    invoice = results[stale_invoice]
    assert invoice.outcome is Outcome.REJECTED, invoice
    [why] = invoice.reasons
    assert why.category == "InactiveCode"
    assert "account 4090" in why.message, why
    assert "cost center 9" in why.message, why
    table = visma.state.company(VISMA_COMPANY).table("supplierinvoice")
    [stored] = [s for s in table if table.spec.key_text(s.key) == stale_invoice[2]]
    uploaded = {d.document.invoice_number for d in basware.state.documents()}
    assert uploaded
    assert stored.record.model_dump()["supplier_reference"] not in uploaded
    # Basware holds both codes, inactive.
    [account] = [a for a in records(basware, "accounts") if a["accountCode"] == "4090"]
    assert account["companies"][0]["active"] is False
    [department] = [c for c in records(basware, "costCenters") if c["costCenterCode"] == "9"]
    assert department["companies"][0]["active"] is False
    # `audit status` shows both, naming the codes.
    assert status.code == 0, status.stderr
    rows = status.stdout.splitlines()
    [order_row] = [line for line in rows if "purchase_order" in line and "000003" in line]
    assert "AccountCode 4090" in order_row
    [invoice_row] = [line for line in rows if "supplier_invoice" in line and "000003" in line]
    assert "account 4090" in invoice_row


async def test_a_segment_moved_from_cost_center_to_project_re_sends_what_it_changes(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    seed = SeedOptions(companies=1, suppliers=3, purchase_orders=3, invoices=0)
    key_file = tmp_path / "master.key"
    key_file.write_text(generate_key() + "\n")
    keyring = Keyring.from_env({"MLC_MASTER_KEY_FILE": str(key_file)})
    # Segment 1 is the cost center; segment 2 (the sandbox's project) is not sent.
    before = CodingLayout(segments={1: SegmentTarget.COST_CENTER})
    async with sandboxes(seed=seed) as (basware, visma):
        connection = sandbox_connection(basware, visma).model_copy(update={"coding": before})
        expected = seeded_records(visma) | reference_records(visma)
        async with ConnectionStore.open(database_url, keyring) as store:
            await store.add(connection)
            async with pipeline(kafka_settings, database_url, topics, source=store):
                await read_events(kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected))
                sent_before = len(basware_requests(basware))

                env = cli_env(
                    tmp_path,
                    DATABASE_URL=database_url,
                    KAFKA_BOOTSTRAP_SERVERS=kafka_settings.bootstrap_servers,
                    MLC_MASTER_KEY_FILE=str(key_file),
                )
                unknown = await asyncio.to_thread(
                    run_cli, ["connections", "coding", connection.name, "--project", "3"], env
                )
                assert unknown.code != 0, unknown
                assert "no segment 3" in unknown.stderr, unknown
                moved = await asyncio.to_thread(
                    run_cli,
                    [
                        *("connections", "coding", connection.name, "--project", "1"),
                        *("--to-topic", topics[Topic.VISMA_CHANGES]),
                    ],
                    env,
                )
                assert moved.code == 0, moved.stderr
                orders = {
                    (VISMA_COMPANY, Entity.PURCHASE_ORDER, o)
                    for (_, e, o) in expected
                    if e is Entity.PURCHASE_ORDER
                }
                segment_1 = {
                    r for r in expected if r[1] is Entity.DIMENSION_VALUE and "/1/" in r[2]
                }
                assert f"{len(orders) + len(segment_1)} records re-sent" in moved.stdout

                await until_segment_1_is_projects(basware)
    assert_only_recoded_re_sent(basware, sent_before, len(orders))

"""`mlconnector reconcile` on the real broker and database: a clean sync is all equal; three
edits made in Basware behind the connector's back are found, exactly, with their fields;
`--heal` restores the vendor and the order with one request each and leaves the duplicate.
And the reconciler service on its schedule: each run stored, on /metrics and in the status."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cli_support import CliResult, run_cli
from conftest import TopicNames
from pipeline_support import covers, latest_results, pipeline, read_events
from sandbox_support import (
    BASWARE_CLIENT,
    connection_environment,
    sandbox_connection,
    sandboxes,
    seeded_records,
)
from writer_support import until

from basware_sandbox import BaswareSandbox, Region
from basware_sandbox.documents import upload_again
from mlconnector.asgi import serve_asgi
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.contracts import Entity, Outcome
from mlconnector.migrations import apply_migrations
from mlconnector.reconcile_status import latest_reconciles
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.sync_status import sync_status
from mlconnector.topics import Topic
from mlconnector_cli.status import render_status
from reconciler.app import create_app as create_reconciler
from reconciler.settings import ReconcilerSettings
from visma_sandbox.config import SeedOptions

pytestmark = pytest.mark.integration

SEED = SeedOptions(companies=1, suppliers=4, purchase_orders=4, invoices=4)
EDITED_NAME = "Edited in Basware AS"


def cli_env(
    connection: Connection,
    basware: BaswareSandbox,
    kafka: KafkaSettings,
    database_url: str,
    home: Path,
) -> dict[str, str]:
    """The connection in the environment, as a script would give it."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MLC_HOME": str(home),
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        **connection_environment(connection, basware),
    }


async def reconcile(env: dict[str, str], *args: str) -> tuple[CliResult, dict[str, Any]]:
    # The command runs its own event loop; the sandboxes keep serving on this one.
    result = await asyncio.to_thread(run_cli, ["reconcile", "--json", *args], env)
    assert result.stdout.startswith("{"), result.stderr
    return result, json.loads(result.stdout)


def differences(output: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    (connection,) = output["connections"]
    return {(d["entity"], d["key"]): d for e in connection["entities"] for d in e["differences"]}


def totals(output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (connection,) = output["connections"]
    return {e["totals"]["entity"]: e["totals"] for e in connection["entities"]}


def records(basware: BaswareSandbox, api: str) -> dict[str, dict[str, Any]]:
    listed = basware.state.records(BASWARE_CLIENT.region, BASWARE_CLIENT.bwcid, api)
    return {r["externalCode"]: r for r in listed}


async def test_reconcile_finds_what_changed_behind_the_connectors_back_and_heals_it(
    kafka_settings: KafkaSettings, database_url: str, topics: TopicNames, tmp_path: Path
) -> None:
    async with sandboxes(seed=SEED) as (basware, visma):
        connection = sandbox_connection(basware, visma)
        expected = seeded_records(visma)
        env = cli_env(connection, basware, kafka_settings, database_url, tmp_path)
        async with pipeline(kafka_settings, database_url, topics, connection):
            events = await read_events(
                kafka_settings, topics[Topic.BASWARE_RESULTS], covers(expected)
            )
            assert {r.outcome for r in latest_results(events).values()} == {Outcome.DELIVERED}
            invoices = SEED.invoices
            await until(lambda: len(basware.state.documents()) == invoices, "invoices imported")

            clean, output = await reconcile(env)
            assert clean.code == 0, clean.stdout
            assert differences(output) == {}
            assert {e: (t["visma"], t["equal"]) for e, t in totals(output).items()} == {
                Entity.SUPPLIER: (SEED.suppliers, SEED.suppliers),
                Entity.PURCHASE_ORDER: (SEED.purchase_orders, SEED.purchase_orders),
                Entity.SUPPLIER_INVOICE: (invoices, invoices),
            }

            # Behind the connector's back: a vendor renamed, an order deleted, an invoice
            # uploaded a second time.
            vendor_code, vendor = sorted(records(basware, "vendors").items())[0]
            visma_name = str(vendor["name"])
            order_code = sorted(records(basware, "matchingOrders"))[0]
            original = basware.state.documents()[0].document
            basware.state.edit_record(
                Region.EU, BASWARE_CLIENT.bwcid, "vendors", vendor_code, {"name": EDITED_NAME}
            )
            basware.state.delete_record(
                Region.EU, BASWARE_CLIENT.bwcid, "matchingOrders", order_code
            )
            duplicate = upload_again(basware.state, original.invoice_id).document

            drifted, output = await reconcile(env)
            assert drifted.code == 1
            invoice_key = f"{original.supplier_code}/{original.invoice_number}"
            found = differences(output)
            assert set(found) == {
                (Entity.SUPPLIER, vendor_code),
                (Entity.PURCHASE_ORDER, order_code),
                (Entity.SUPPLIER_INVOICE, invoice_key),
            }
            renamed = found[(Entity.SUPPLIER, vendor_code)]
            assert renamed["outcome"] == "different"
            assert renamed["fields"] == [
                {"field": "name", "visma": visma_name, "basware": EDITED_NAME}
            ]
            assert found[(Entity.PURCHASE_ORDER, order_code)]["outcome"] == "missing"
            twice = found[(Entity.SUPPLIER_INVOICE, invoice_key)]
            assert twice["outcome"] == "duplicate"
            assert set(twice["basware_ids"]) == {original.invoice_id, duplicate.invoice_id}

            since = len(basware.state.request_log)
            healing, output = await reconcile(
                env, "--heal", "--to-topic", topics[Topic.VISMA_CHANGES]
            )
            assert healing.code == 1
            assert {(h["entity"], h["entity_id"]) for h in output["healed"]} == {
                (Entity.SUPPLIER, renamed["entity_id"]),
                (Entity.PURCHASE_ORDER, found[(Entity.PURCHASE_ORDER, order_code)]["entity_id"]),
            }
            await until(
                lambda: (
                    records(basware, "vendors")[vendor_code]["name"] == visma_name
                    and order_code in records(basware, "matchingOrders")
                ),
                "vendor and order restored",
            )
            posted = [e for e in list(basware.state.request_log)[since:] if e.method == "POST"]
            assert [e.path for e in posted if e.path == "/v1/vendors"] == ["/v1/vendors"]
            assert [e.path for e in posted if e.path == "/v1/matchingOrders"] == [
                "/v1/matchingOrders"
            ]

            after, output = await reconcile(env)
            assert after.code == 1
            assert set(differences(output)) == {(Entity.SUPPLIER_INVOICE, invoice_key)}


async def test_the_reconciler_runs_each_connection_on_its_schedule_and_shows_it(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    seed = SeedOptions(companies=1, suppliers=3, purchase_orders=0, invoices=0)
    conn = await asyncpg.connect(database_url)
    try:
        # The shared Basware budget lives in the writer's tables.
        await apply_migrations(conn, "basware_writer", owner="basware-writer")
        async with sandboxes(seed=seed) as (basware, visma):
            connection = sandbox_connection(basware, visma)
            app = create_reconciler(
                kafka_settings,
                DatabaseSettings(database_url=database_url),
                ReconcilerSettings(schedule="0.2", check_interval_seconds=0.05),
                StaticConnectionSource([connection]),
            )
            async with serve_asgi(app) as url, httpx.AsyncClient(base_url=url) as http:
                # A guard against a hang, not a timed assertion.
                async with asyncio.timeout(30):
                    while not (runs := await latest_reconciles(conn)):
                        await asyncio.sleep(0.05)
                metrics = (await http.get("/metrics")).text
            report = await sync_status(conn, [])
    finally:
        await conn.close()

    (run,) = runs
    assert (run.connection, run.all_equal, run.error) == (connection.name, False, None)
    totals = {e.entity: (e.visma, e.missing) for e in run.entities}
    # Nothing was synced: Basware lacks every supplier.
    assert totals[Entity.SUPPLIER] == (seed.suppliers, seed.suppliers)
    sample = (
        f'mlc_reconcile_records{{connection="{connection.name}",entity="supplier",'
        f'outcome="missing"}} {float(seed.suppliers)}'
    )
    assert sample in metrics
    shown = render_status(report)
    (line,) = [line for line in shown.splitlines() if connection.name in line]
    assert "supplier: 3 missing" in line

"""`ping` and region routing against the two sandboxes, and the CLI end to end.

Each failure case must come out as its own problem, on the right side and step, with the
rest of the connection still reported as working.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from basware_sandbox.config import ApiClient, Region
from basware_sandbox.config import SandboxConfig as BaswareConfig
from basware_sandbox.runner import BaswareSandbox, run_basware_sandbox
from mlconnector.asgi import free_port
from mlconnector.basware import (
    BaswareCredentials,
    BaswareHost,
    BaswareHosts,
    BaswareRegion,
    BaswareVendor,
    VendorCompany,
)
from mlconnector.connection_checks import PingReport, ping
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection
from mlconnector.problems import Problem
from mlconnector.vault import Keyring, MasterKey, generate_key
from mlconnector.visma import VismaCredentials, VismaEndpoints
from mlconnector_cli.__main__ import app
from visma_sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    CompanyInfo,
    SeedOptions,
)
from visma_sandbox.config import SandboxConfig as VismaConfig
from visma_sandbox.runner import RunningSandbox, run_visma_sandbox

pytestmark = pytest.mark.integration

COMPANY = CompanyInfo.demo(1)
EU_SECRET = "eu-basware-secret-4e1f"
US_SECRET = "us-basware-secret-9b7d"
WEBHOOK_SECRET = "basware-webhook-secret-02aa"
WRONG_SECRET = "not-the-secret-6c3e"
KNOWN_SECRETS = (DEMO_CLIENT_SECRET, EU_SECRET, US_SECRET, WEBHOOK_SECRET, WRONG_SECRET)


@pytest.fixture(scope="module")
async def visma() -> AsyncIterator[RunningSandbox]:
    config = VismaConfig(seed=SeedOptions(companies=1, suppliers=3, purchase_orders=0, invoices=0))
    async with run_visma_sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
async def basware() -> AsyncIterator[BaswareSandbox]:
    config = BaswareConfig(
        clients=[
            ApiClient(
                client_id="eu-client",
                client_secret=SecretStr(EU_SECRET),
                region=Region.EU,
                bwcid="EU-TENANT",
            ),
            ApiClient(
                client_id="us-client",
                client_secret=SecretStr(US_SECRET),
                region=Region.US,
                bwcid="US-TENANT",
            ),
        ]
    )
    async with run_basware_sandbox(config) as sandbox:
        yield sandbox


def sandbox_hosts(sandbox: BaswareSandbox) -> BaswareHosts:
    """The sandbox's production hosts of every region, each on its loopback port."""
    return BaswareHosts(
        hosts={
            region: BaswareHost(
                base_url=sandbox.base_url(region.value), issuer=sandbox.host(region.value).issuer
            )
            for region in BaswareRegion
        }
    )


def connection(
    visma: RunningSandbox,
    basware: BaswareSandbox,
    *,
    name: str = "acme",
    visma_secret: str = DEMO_CLIENT_SECRET,
    tenant_id: str = COMPANY.tenant_id,
    company_id: str = COMPANY.company_id,
    token_url: str | None = None,
    basware_client: str = "eu-client",
    basware_secret: str = EU_SECRET,
    region: BaswareRegion | None = None,
    hosts: BaswareHosts | None = None,
) -> Connection:
    return Connection(
        name=name,
        visma=VismaCredentials(
            client_id=DEMO_CLIENT_ID,
            client_secret=SecretStr(visma_secret),
            tenant_id=tenant_id,
            company_id=company_id,
        ),
        visma_endpoints=VismaEndpoints(
            token_url=token_url or visma.token_url, api_base_url=visma.api_base_url
        ),
        basware=BaswareCredentials(
            client_id=basware_client, client_secret=SecretStr(basware_secret), region=region
        ),
        basware_hosts=hosts or sandbox_hosts(basware),
        basware_webhook_secret=SecretStr(WEBHOOK_SECRET),
    )


def failures(report: PingReport) -> set[tuple[str, str, Problem | None]]:
    return {(c.system, c.step, c.problem) for c in report.checks if not c.ok}


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def test_a_working_connection_passes_every_check(
    visma: RunningSandbox, basware: BaswareSandbox
) -> None:
    report = await ping(connection(visma, basware))
    assert report.ok, report
    assert [(c.system, c.step) for c in report.checks] == [
        ("Visma", "token"),
        ("Visma", "read"),
        ("Basware", "token"),
        ("Basware", "read"),
        ("Clock", "time"),
    ]
    basware_token = report.checks[2]
    assert "region EU" in basware_token.detail
    assert "EU-TENANT" in basware_token.detail


async def test_wrong_visma_secret(visma: RunningSandbox, basware: BaswareSandbox) -> None:
    report = await ping(connection(visma, basware, visma_secret=WRONG_SECRET))
    assert failures(report) == {("Visma", "token", Problem.WRONG_SECRET)}


async def test_wrong_basware_secret(visma: RunningSandbox, basware: BaswareSandbox) -> None:
    report = await ping(connection(visma, basware, basware_secret=WRONG_SECRET))
    assert failures(report) == {("Basware", "token", Problem.WRONG_SECRET)}


@pytest.mark.parametrize(
    ("tenant_id", "company_id", "said"),
    [
        # The customer's tenant id instead of the company's: Visma Connect issues a token,
        # the ERP answers 12027 on every call.
        (COMPANY.customer_tenant_id, COMPANY.company_id, "12027"),
        # The right tenant, but ipp-company-id names another company: 12002.
        (COMPANY.tenant_id, "1009999", "12002"),
    ],
)
async def test_wrong_company_gets_a_token_but_no_data(
    visma: RunningSandbox, basware: BaswareSandbox, tenant_id: str, company_id: str, said: str
) -> None:
    report = await ping(connection(visma, basware, tenant_id=tenant_id, company_id=company_id))
    assert failures(report) == {("Visma", "read", Problem.WRONG_COMPANY)}
    assert said in next(c for c in report.checks if not c.ok).detail


async def test_wrong_region_names_the_region_that_accepts(
    visma: RunningSandbox, basware: BaswareSandbox
) -> None:
    report = await ping(
        connection(
            visma,
            basware,
            basware_client="us-client",
            basware_secret=US_SECRET,
            region=BaswareRegion.EU,
        )
    )
    assert failures(report) == {("Basware", "token", Problem.WRONG_REGION)}
    failed = next(c for c in report.checks if not c.ok)
    assert "valid in US, not in the configured region EU" in failed.detail


async def test_clock_skew_is_reported_while_the_calls_still_work(
    visma: RunningSandbox, basware: BaswareSandbox
) -> None:
    basware.state.clock.advance(600)
    try:
        report = await ping(connection(visma, basware))
    finally:
        basware.state.clock.advance(-600)
    assert failures(report) == {("Clock", "time", Problem.CLOCK_SKEW)}
    # iat is whole seconds, so the reading is 599 or 600.
    assert re.search(r"Basware is (599|600) s ahead of this machine", report.checks[-1].detail)


async def test_unreachable_hosts_on_either_side(
    visma: RunningSandbox, basware: BaswareSandbox
) -> None:
    dead_eu = sandbox_hosts(basware).model_copy(
        update={
            "hosts": {
                **sandbox_hosts(basware).hosts,
                BaswareRegion.EU: BaswareHost(
                    base_url=closed_port_url(), issuer=basware.host("EU").issuer
                ),
            }
        }
    )
    report = await ping(
        connection(
            visma,
            basware,
            token_url=f"{closed_port_url()}/connect/token",
            region=BaswareRegion.EU,
            hosts=dead_eu,
        )
    )
    assert failures(report) == {
        ("Visma", "token", Problem.UNREACHABLE),
        ("Basware", "token", Problem.UNREACHABLE),
    }


async def test_two_regions_are_stored_and_each_record_lands_in_its_region(
    visma: RunningSandbox, basware: BaswareSandbox, database_url: str
) -> None:
    keyring = Keyring(MasterKey.from_base64(generate_key()))
    eu = connection(visma, basware, name="eu-customer", region=BaswareRegion.EU)
    us = connection(
        visma,
        basware,
        name="us-customer",
        basware_client="us-client",
        basware_secret=US_SECRET,
        region=BaswareRegion.US,
    )
    async with ConnectionStore.open(database_url, keyring) as store:
        await store.add(eu)
        await store.add(us)
        stored = {c.name: c for c in await store.list()}
    for name, code in (("eu-customer", "V-EU-1"), ("us-customer", "V-US-1")):
        vendor = BaswareVendor(
            external_code=code,
            vendor_code=code,
            name=f"Vendor {code}",
            companies=[VendorCompany(company_code="BW00")],
        )
        async with stored[name].basware_client() as client:
            await client.upsert_vendors([vendor])

    def codes(region: str, tenant: str) -> set[str]:
        return {r["externalCode"] for r in basware.state.records(region, tenant, "vendors")}

    assert codes("EU", "EU-TENANT") == {"V-EU-1"}
    assert codes("US", "US-TENANT") == {"V-US-1"}
    assert codes("US", "EU-TENANT") == set()
    assert codes("EU", "US-TENANT") == set()


# --- the command line, end to end ---


def cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, input=stdin, env=env)
    return result.exit_code, result.output + (str(result.exception or ""))


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    keyfile = tmp_path / "master.key"
    keyfile.write_text(generate_key() + "\n")
    return {
        "DATABASE_URL": database_url,
        "MLC_MASTER_KEY_FILE": str(keyfile),
        "MLC_MASTER_KEY": "",
        "MLC_MASTER_KEYS": "",
        "VISMA_CLIENT_ID": "",
    }


def add_args(
    name: str, visma: RunningSandbox, hosts_file: Path, basware_client: str, *extra: str
) -> list[str]:
    return [
        "connections", "add", name,
        "--visma-client-id", DEMO_CLIENT_ID,
        "--visma-tenant-id", COMPANY.tenant_id,
        "--visma-company-id", COMPANY.company_id,
        "--visma-token-url", visma.token_url,
        "--visma-api-base-url", visma.api_base_url,
        "--basware-client-id", basware_client,
        "--basware-hosts", str(hosts_file),
        "--secrets-from-stdin",
        *extra,
    ]  # fmt: skip


async def test_cli_adds_pings_schedules_rotates_and_never_shows_a_secret(
    visma: RunningSandbox,
    basware: BaswareSandbox,
    cli_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hosts_file = tmp_path / "hosts.json"
    hosts_file.write_text(sandbox_hosts(basware).model_dump_json())
    outputs: list[str] = []

    async def run(args: list[str], stdin: str | None = None) -> int:
        # The CLI runs its own event loop; the sandboxes keep serving on this one.
        code, output = await asyncio.to_thread(cli, args, cli_env, stdin)
        outputs.append(output)
        return code

    us_secrets = json.dumps(
        {"visma_client_secret": DEMO_CLIENT_SECRET, "basware_client_secret": US_SECRET,
         "basware_webhook_secret": WEBHOOK_SECRET}
    )  # fmt: skip
    # The region comes from the credentials: us-client lives in US.
    assert await run(add_args("us-co", visma, hosts_file, "us-client"), us_secrets) == 0
    assert "Basware region US" in outputs[-1]
    # Pinned to the wrong region: refused at add time, nothing stored.
    assert (
        await run(
            add_args("bad-region", visma, hosts_file, "us-client", "--basware-region", "EU"),
            us_secrets,
        )
        == 1
    )
    assert "wrong region" in outputs[-1]
    assert "valid in US, not in the configured region EU" in outputs[-1]
    # A wrong secret: no region accepts it.
    lines = f"{DEMO_CLIENT_SECRET}\n{WRONG_SECRET}\n"
    assert await run(add_args("bad-secret", visma, hosts_file, "eu-client"), lines) == 1
    assert "no configured region accepts" in outputs[-1]
    # Secrets as lines, in order.
    lines = f"{DEMO_CLIENT_SECRET}\n{EU_SECRET}\n{WEBHOOK_SECRET}\n"
    assert await run(add_args("eu-co", visma, hosts_file, "eu-client"), lines) == 0

    assert await run(["connections", "list"]) == 0
    listed = outputs[-1]
    assert "eu-co:" in listed
    assert "us-co:" in listed
    assert "bad-region" not in listed
    assert "bad-secret" not in listed

    assert await run(["ping"]) == 0
    assert outputs[-1].count("works.") == 2

    assert await run(["connections", "schedule", "eu-co", "supplier", "--every", "45s"]) == 0
    assert (
        await run(["connections", "schedule", "eu-co", "purchase_order", "--cron", "*/5 * * * *"])
        == 0
    )
    assert "supplier every 45s, purchase_order cron */5 * * * * (UTC)" in outputs[-1]
    assert await run(["connections", "schedule", "eu-co", "supplier", "--cron", "nope"]) == 1

    # Rotation: a new current key, the old one still loaded; then only the new one.
    old_key = Path(cli_env["MLC_MASTER_KEY_FILE"]).read_text().strip()
    cli_env["MLC_MASTER_KEY"] = generate_key()
    cli_env["MLC_MASTER_KEYS"] = old_key
    assert await run(["keys", "rotate"]) == 0
    assert "Re-sealed 6 secrets" in outputs[-1]
    cli_env["MLC_MASTER_KEY_FILE"] = ""
    cli_env["MLC_MASTER_KEYS"] = ""
    assert await run(["keys", "status"]) == 0
    assert "current     seals 6 secrets" in outputs[-1]
    assert await run(["ping", "eu-co"]) == 0

    # A failing ping exits 1 and says why.
    await asyncio.to_thread(basware.state.clock.advance, 600)
    try:
        assert await run(["ping", "us-co"]) == 1
    finally:
        basware.state.clock.advance(-600)
    assert "clock skew" in outputs[-1]

    assert await run(["connections", "remove", "us-co", "--yes"]) == 0
    assert await run(["ping", "us-co"]) == 1
    assert "no connection named 'us-co'" in outputs[-1]

    shown = "\n".join([*outputs, caplog.text])
    assert "HTTP Request" in caplog.text  # the client logs were captured
    for secret in KNOWN_SECRETS:
        assert secret not in shown


async def test_ping_checks_the_connection_the_environment_describes(
    visma: RunningSandbox, basware: BaswareSandbox
) -> None:
    env = {
        "VISMA_CLIENT_ID": DEMO_CLIENT_ID,
        "VISMA_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "VISMA_TENANT_ID": COMPANY.tenant_id,
        "VISMA_COMPANY_ID": COMPANY.company_id,
        "VISMA_TOKEN_URL": visma.token_url,
        "VISMA_API_BASE_URL": visma.api_base_url,
        "BASWARE_CLIENT_ID": "us-client",
        "BASWARE_CLIENT_SECRET": US_SECRET,
        "BASWARE_REGION": "US",
        "BASWARE_BASE_URL": basware.base_url("US"),
        # No key and no database are needed for the environment's connection.
        "MLC_MASTER_KEY": "",
        "MLC_MASTER_KEY_FILE": "",
        "DATABASE_URL": closed_port_url(),
    }
    code, output = await asyncio.to_thread(cli, ["ping"], env)
    assert code == 0, output
    assert "default (Visma company 1000001)" in output
    assert "region US accepts the credentials" in output
    assert US_SECRET not in output

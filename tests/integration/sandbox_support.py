"""The two API sandboxes in-process, and the connection that joins them, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import SecretStr

from basware_sandbox import ApiClient as BaswareSandboxClient
from basware_sandbox import (
    BaswareSandbox,
    Region,
    SandboxConfig,
    WebhookDelivery,
    WebhookSignature,
    run_basware_sandbox,
    tenant_clients,
)
from mlconnector.basware import BaswareCredentials, BaswareHost, BaswareHosts, BaswareRegion
from mlconnector.connections import Connection
from mlconnector.contracts import Entity
from mlconnector.visma import READ_SCOPE, UPDATE_SCOPE, VismaCredentials, VismaEndpoints
from visma_sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SeedOptions
from visma_sandbox.config import SandboxConfig as VismaSandboxConfig
from visma_sandbox.runner import RunningSandbox, run_visma_sandbox

BASWARE_CLIENT = BaswareSandboxClient(
    client_id="gateway-test",
    client_secret=SecretStr("gateway-test-secret"),
    region=Region.EU,
    bwcid="GATEWAY-TENANT",
    company_codes=["BW00"],
)
# A second Basware customer, provisioned in the US region.
BASWARE_US_CLIENT = BaswareSandboxClient(
    client_id="us-test",
    client_secret=SecretStr("us-test-secret"),
    region=Region.US,
    bwcid="US-TENANT",
    company_codes=["US01"],
)
SANDBOX_BASWARE_SECRET = "sandbox-basware-webhook-secret"
SANDBOX_VISMA_SECRET = "sandbox-visma-webhook-secret"
VISMA_COMPANY = "1000001"


def sandbox_connection(
    basware: BaswareSandbox,
    visma: RunningSandbox,
    *,
    write_back: bool = False,
    visma_company: str = VISMA_COMPANY,
    basware_client: BaswareSandboxClient = BASWARE_CLIENT,
) -> Connection:
    """The connection joining a Visma sandbox company (the first by default) to a Basware
    sandbox customer (the EU one by default)."""
    company = visma.state.company(visma_company).info
    region = BaswareRegion(basware_client.region.value)
    return Connection(
        name=f"sandboxes-{visma_company}",
        visma=VismaCredentials(
            client_id=DEMO_CLIENT_ID,
            client_secret=SecretStr(DEMO_CLIENT_SECRET),
            tenant_id=company.tenant_id,
            company_id=company.company_id,
            scopes=(READ_SCOPE, UPDATE_SCOPE),
        ),
        visma_endpoints=VismaEndpoints(token_url=visma.token_url, api_base_url=visma.api_base_url),
        visma_webhook_secret=SecretStr(SANDBOX_VISMA_SECRET),
        basware=BaswareCredentials(
            client_id=basware_client.client_id,
            client_secret=basware_client.client_secret,
            region=region,
        ),
        basware_hosts=BaswareHosts(
            hosts={
                region: BaswareHost(
                    base_url=basware.base_url(basware_client.region),
                    issuer=basware.host(basware_client.region).issuer,
                )
            }
        ),
        basware_webhook_secret=SecretStr(SANDBOX_BASWARE_SECRET),
        basware_company_code=basware_client.company_codes[0],
        basware_receiving_email="invoices@sandbox.basware.local",
        write_back=write_back,
    )


def connection_environment(connection: Connection, basware: BaswareSandbox) -> dict[str, str]:
    """A sandbox connection as the environment variables of the single-connection form."""
    return {
        "MLC_CONNECTION_NAME": connection.name,
        "VISMA_CLIENT_ID": connection.visma.client_id,
        "VISMA_CLIENT_SECRET": connection.visma.client_secret.get_secret_value(),
        "VISMA_TENANT_ID": connection.visma.tenant_id,
        "VISMA_COMPANY_ID": connection.visma.company_id,
        "VISMA_TOKEN_URL": connection.visma_endpoints.token_url,
        "VISMA_API_BASE_URL": connection.visma_endpoints.api_base_url,
        "BASWARE_CLIENT_ID": connection.basware.client_id,
        "BASWARE_CLIENT_SECRET": connection.basware.client_secret.get_secret_value(),
        "BASWARE_REGION": "EU",
        "BASWARE_BASE_URL": basware.base_url(Region.EU),
        "BASWARE_ISSUER": basware.host(Region.EU).issuer,
        "BASWARE_COMPANY_CODE": connection.basware_company_code or "",
        "BASWARE_RECEIVING_EMAIL": connection.basware_receiving_email or "",
    }


@contextlib.asynccontextmanager
async def sandboxes(
    signature: WebhookSignature | None = None,
    seed: SeedOptions | None = None,
    processing_delay_seconds: float | None = None,
    tenants: int = 0,
) -> AsyncIterator[tuple[BaswareSandbox, RunningSandbox]]:
    """`tenants` Basware customers of their own besides the two (basware_sandbox's
    `tenant_clients`), for as many connections."""
    basware_config = SandboxConfig(
        clients=[BASWARE_CLIENT, BASWARE_US_CLIENT, *tenant_clients(tenants)],
        webhook_signature=signature or WebhookSignature(),
        webhook_delivery=WebhookDelivery(attempts=3, backoff_seconds=0.05, timeout_seconds=5),
    )
    if processing_delay_seconds is not None:
        basware_config = basware_config.model_copy(
            update={"processing_delay_seconds": processing_delay_seconds}
        )
    visma_config = VismaSandboxConfig(
        seed=seed or SeedOptions(companies=1, suppliers=5, purchase_orders=0, invoices=3)
    )
    async with (
        run_basware_sandbox(basware_config) as basware,
        run_visma_sandbox(visma_config) as visma,
    ):
        yield basware, visma


# The sandbox names entities after Visma's endpoints; the events after the product's entities.
VISMA_TABLE = {
    Entity.SUPPLIER: "supplier",
    Entity.PURCHASE_ORDER: "purchaseorder",
    Entity.SUPPLIER_INVOICE: "supplierinvoice",
}


RecordRef = tuple[str, Entity, str]


def seeded_records(visma: RunningSandbox, visma_company: str = VISMA_COMPANY) -> set[RecordRef]:
    """(tenant, entity, id) of every record the sandbox company holds."""
    company = visma.state.company(visma_company)
    return {
        (visma_company, entity, company.table(name).spec.key_text(stored.key))
        for entity, name in VISMA_TABLE.items()
        for stored in company.table(name)
    }


def vendors(
    basware: BaswareSandbox, client: BaswareSandboxClient = BASWARE_CLIENT
) -> dict[str, dict[str, Any]]:
    """The vendors Basware accepted for one customer (region and tenant of its client)."""
    accepted = basware.state.records(client.region, client.bwcid, "vendors", accepted=True)
    return {str(v["vendorCode"]): v for v in accepted}


async def until_vendor_named(basware: BaswareSandbox, vendor_code: str, name: str) -> None:
    """Waits until Basware holds the vendor under that name; the guard only stops a hang."""
    async with asyncio.timeout(30):
        while vendors(basware).get(vendor_code, {}).get("name") != name:
            await asyncio.sleep(0.05)

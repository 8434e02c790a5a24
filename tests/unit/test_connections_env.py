"""The single connection described by environment variables."""

from __future__ import annotations

import pytest

from mlconnector.basware import BaswareEnvironment, BaswareRegion
from mlconnector.connections import (
    ALL_ENTITIES,
    ConnectionInvalid,
    ConnectionNotFound,
    EnvConnectionSource,
    find_tenant,
)
from mlconnector.contracts import Entity
from mlconnector.schedule import CronSchedule, IntervalSchedule

SECRET = "env-visma-secret-31f9"
ENV = {
    "VISMA_CLIENT_ID": "client",
    "VISMA_CLIENT_SECRET": SECRET,
    "VISMA_TENANT_ID": "tenant-guid",
    "VISMA_COMPANY_ID": "1000001",
    "BASWARE_CLIENT_ID": "bw-client",
    "BASWARE_CLIENT_SECRET": "env-basware-secret-77",
    "PATH": "/usr/bin",
}


async def test_minimal_environment_gives_one_connection_with_defaults() -> None:
    source = EnvConnectionSource(ENV)
    [connection] = await source.list()
    assert connection.name == "default"
    assert connection.tenant == "1000001"
    assert connection.visma.client_secret.get_secret_value() == SECRET
    assert connection.basware.region is None  # detected on first use
    assert connection.hosts.environment is BaswareEnvironment.PRODUCTION
    assert connection.entities == ALL_ENTITIES
    assert not connection.write_back
    assert await source.get("default") == connection
    with pytest.raises(ConnectionNotFound):
        await source.get("other")


async def test_one_base_url_pins_the_region_and_keeps_its_public_issuer() -> None:
    env = {**ENV, "BASWARE_BASE_URL": "http://127.0.0.1:8082/", "BASWARE_REGION": "US"}
    [connection] = await EnvConnectionSource(env).list()
    assert connection.basware.region is BaswareRegion.US
    host = connection.hosts.host(BaswareRegion.US)
    assert host.base_url == "http://127.0.0.1:8082"
    assert host.issuer == "https://api.us.basware.com"


async def test_options_and_schedules_from_the_environment() -> None:
    env = {
        **ENV,
        "MLC_CONNECTION_NAME": "acme",
        "MLC_ENTITIES": "supplier, purchase_order",
        "MLC_WRITE_BACK": "true",
        "MLC_SCHEDULE_SUPPLIER": "45s",
        "MLC_SCHEDULE_PURCHASE_ORDER": "cron:*/10 * * * *",
        "BASWARE_HOSTS": '{"environment": "test", "hosts": {"AU": '
        '{"base_url": "https://au.example", "issuer": "https://test-api.au.basware.com"}}}',
    }
    [connection] = await EnvConnectionSource(env).list()
    assert connection.name == "acme"
    assert connection.entities == (Entity.SUPPLIER, Entity.PURCHASE_ORDER)
    assert connection.write_back
    assert connection.schedules == {
        Entity.SUPPLIER: IntervalSchedule(seconds=45),
        Entity.PURCHASE_ORDER: CronSchedule(expression="*/10 * * * *"),
    }
    assert connection.basware.region is BaswareRegion.AU
    assert connection.hosts.host(BaswareRegion.AU).base_url == "https://au.example"


def test_configured_only_when_visma_client_id_is_set() -> None:
    assert EnvConnectionSource.configured(ENV)
    assert not EnvConnectionSource.configured({"PATH": "/usr/bin"})


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"VISMA_TENANT_ID": ""}, "VISMA_TENANT_ID: Field required"),
        ({"MLC_ENTITIES": "vendors"}, "'vendors' is not a valid Entity"),
        ({"MLC_SCHEDULE_SUPPLIER": "often"}, "not an interval"),
        ({"BASWARE_REGION": "MARS"}, "BASWARE_REGION: Input should be"),
    ],
)
def test_a_bad_environment_names_the_variable_and_never_the_secret(
    change: dict[str, str], named: str
) -> None:
    with pytest.raises(ConnectionInvalid) as caught:
        EnvConnectionSource({**ENV, **change})
    assert named in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or SECRET not in str(caught.value.__context__)


async def test_find_tenant_by_visma_company_id() -> None:
    source = EnvConnectionSource(ENV)
    assert (await find_tenant(source, "1000001")).name == "default"
    with pytest.raises(ConnectionNotFound, match="no connection for tenant '999'"):
        await find_tenant(source, "999")

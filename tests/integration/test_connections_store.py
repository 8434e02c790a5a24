"""The connection store on the real PostgreSQL: round trip, sealed columns, rotation, schedules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from mlconnector.basware import BaswareCredentials, BaswareHosts, BaswareRegion
from mlconnector.connection_store import ConnectionExists, ConnectionStore
from mlconnector.connections import Connection, ConnectionNotFound
from mlconnector.contracts import Entity
from mlconnector.schedule import CronSchedule, IntervalSchedule
from mlconnector.vault import Keyring, MasterKey, VaultError, generate_key
from mlconnector.visma import VismaCredentials, VismaEndpoints

pytestmark = pytest.mark.integration

# Secrets every test can search for: none may appear outside the sealed columns.
VISMA_SECRET = "visma-secret-7f3a9c"
BASWARE_SECRET = "basware-secret-51d2e0"
WEBHOOK_SECRET = "webhook-secret-c0ffee"
KNOWN_SECRETS = (VISMA_SECRET, BASWARE_SECRET, WEBHOOK_SECRET)


def make_connection(
    name: str,
    *,
    company_id: str = "1000001",
    tenant_id: str = "tenant-1",
    visma_secret: str = VISMA_SECRET,
    basware_client_id: str = "demo-basware-client",
    basware_secret: str = BASWARE_SECRET,
    region: BaswareRegion | None = BaswareRegion.EU,
    hosts: BaswareHosts | None = None,
    visma_endpoints: VismaEndpoints | None = None,
) -> Connection:
    return Connection(
        name=name,
        visma=VismaCredentials(
            client_id="demo-visma-client",
            client_secret=SecretStr(visma_secret),
            tenant_id=tenant_id,
            company_id=company_id,
        ),
        visma_endpoints=visma_endpoints or VismaEndpoints(),
        visma_webhook_secret=SecretStr(WEBHOOK_SECRET + "-visma"),
        basware=BaswareCredentials(
            client_id=basware_client_id, client_secret=SecretStr(basware_secret), region=region
        ),
        basware_hosts=hosts,
        basware_webhook_secret=SecretStr(WEBHOOK_SECRET),
        entities=(Entity.SUPPLIER, Entity.PURCHASE_ORDER),
        write_back=True,
        schedules={
            Entity.SUPPLIER: IntervalSchedule(seconds=30),
            Entity.PURCHASE_ORDER: CronSchedule(expression="*/5 * * * *"),
        },
    )


def ring(*keys: str) -> Keyring:
    loaded = [MasterKey.from_base64(k) for k in keys]
    return Keyring(loaded[0], loaded[1:])


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
async def store(database_url: str, key: str) -> AsyncIterator[ConnectionStore]:
    async with ConnectionStore.open(database_url, ring(key)) as opened:
        yield opened


async def database_text(database_url: str) -> str:
    """Every row of every table of the connection store, as the database would dump it."""
    conn = await asyncpg.connect(database_url)
    try:
        parts: list[str] = []
        for table in ("connections", "connection_secrets", "connection_schedules"):
            rows = await conn.fetch(f"SELECT t::text AS row FROM {table} t")  # noqa: S608
            parts.extend(row["row"] for row in rows)
        raw = await conn.fetch("SELECT ciphertext FROM connection_secrets")
        parts.extend(bytes(row["ciphertext"]).decode("latin-1") for row in raw)
        return "\n".join(parts)
    finally:
        await conn.close()


async def test_a_connection_comes_back_as_it_went_in(store: ConnectionStore) -> None:
    added = make_connection("acme", region=BaswareRegion.US)
    await store.add(added)
    got = await store.get("acme")
    assert got == added
    assert got.visma.client_secret.get_secret_value() == VISMA_SECRET
    assert got.tenant == "1000001"
    assert got.basware.region is BaswareRegion.US
    assert [c.name for c in await store.list()] == ["acme"]


async def test_secrets_are_unreadable_in_the_database_without_the_key(
    store: ConnectionStore, database_url: str
) -> None:
    await store.add(make_connection("acme"))
    dump = await database_text(database_url)
    assert "demo-visma-client" in dump  # the dump is real: non-secret settings are there
    for secret in KNOWN_SECRETS:
        assert secret not in dump
    async with ConnectionStore.open(database_url, ring(generate_key())) as other_key:
        with pytest.raises(VaultError, match="not loaded"):
            await other_key.get("acme")


async def test_a_ciphertext_copied_to_another_connection_does_not_decrypt(
    store: ConnectionStore, database_url: str
) -> None:
    await store.add(make_connection("acme"))
    await store.add(make_connection("globex", visma_secret="another-secret"))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE connection_secrets g SET key_id = a.key_id, nonce = a.nonce,"
            " ciphertext = a.ciphertext FROM connection_secrets a, connections ca, connections cg"
            " WHERE a.connection_id = ca.id AND ca.name = 'acme' AND g.connection_id = cg.id"
            " AND cg.name = 'globex' AND a.field = 'visma.client_secret' AND g.field = a.field"
        )
    finally:
        await conn.close()
    with pytest.raises(VaultError, match="does not authenticate"):
        await store.get("globex")
    assert (await store.get("acme")).visma.client_secret.get_secret_value() == VISMA_SECRET


async def test_rotation_keeps_every_connection_working(database_url: str, key: str) -> None:
    names = ["acme", "globex", "initech"]
    async with ConnectionStore.open(database_url, ring(key)) as old:
        for name in names:
            await old.add(make_connection(name, visma_secret=f"{name}-visma-secret"))
        before = await old.list()
    new_key = generate_key()
    async with ConnectionStore.open(database_url, ring(new_key, key)) as rotating:
        # Before rotating, the new keyring still reads secrets sealed under the old key.
        assert await rotating.list() == before
        report = await rotating.rotate_keys()
        assert report.resealed == 3 * 4  # four secret fields per connection
        assert report.already_current == 0
        assert await rotating.key_usage() == {MasterKey.from_base64(new_key).key_id: 12}
        again = await rotating.rotate_keys()
        assert (again.resealed, again.already_current) == (0, 12)
    async with ConnectionStore.open(database_url, ring(new_key)) as new_only:
        assert await new_only.list() == before
    async with ConnectionStore.open(database_url, ring(key)) as old_only:
        with pytest.raises(VaultError):
            await old_only.get("acme")


async def test_schedules_are_set_and_cleared_per_entity(store: ConnectionStore) -> None:
    await store.add(make_connection("acme"))
    updated = await store.update_schedule(
        "acme", Entity.SUPPLIER_INVOICE, CronSchedule(expression="0 * * * *")
    )
    assert updated.schedules[Entity.SUPPLIER_INVOICE] == CronSchedule(expression="0 * * * *")
    updated = await store.update_schedule("acme", Entity.SUPPLIER, IntervalSchedule(seconds=5))
    assert updated.schedules[Entity.SUPPLIER] == IntervalSchedule(seconds=5)
    cleared = await store.update_schedule("acme", Entity.PURCHASE_ORDER, None)
    assert Entity.PURCHASE_ORDER not in cleared.schedules
    assert (await store.get("acme")).schedules == cleared.schedules
    with pytest.raises(ConnectionNotFound):
        await store.update_schedule("nobody", Entity.SUPPLIER, None)


async def test_names_are_unique_and_removal_takes_the_secrets(
    store: ConnectionStore, database_url: str
) -> None:
    await store.add(make_connection("acme"))
    with pytest.raises(ConnectionExists):
        await store.add(make_connection("acme"))
    await store.remove("acme")
    with pytest.raises(ConnectionNotFound):
        await store.get("acme")
    with pytest.raises(ConnectionNotFound):
        await store.remove("acme")
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM connection_secrets") == 0
    finally:
        await conn.close()


async def test_a_store_shows_no_secret_in_reprs(store: ConnectionStore) -> None:
    await store.add(make_connection("acme"))
    got = await store.get("acme")
    for shown in (repr(got), str(got), got.model_dump_json(), repr(store)):
        for secret in KNOWN_SECRETS:
            assert secret not in shown
    assert isinstance(got.basware_webhook_secret, SecretStr)


async def test_a_running_store_reads_secrets_resealed_under_a_key_it_loads_later(
    database_url: str, key: str, tmp_path: Path
) -> None:
    """A service opened its store with the old key; `keys rotate` then re-sealed everything
    under a new one written to the key file. The running store loads the file again."""
    key_file = tmp_path / "master.key"
    key_file.write_text(f"{key}\n")
    environ = {"MLC_MASTER_KEY_FILE": str(key_file)}
    reloads = 0

    def reload() -> Keyring:
        nonlocal reloads
        reloads += 1
        return Keyring.from_env(environ)

    async with ConnectionStore.open(database_url, reload(), reload) as running:
        await running.add(make_connection("acme"))
        before = await running.list()
        new_key = generate_key()
        key_file.write_text(f"{new_key}\n{key}\n")
        async with ConnectionStore.open(database_url, ring(new_key, key)) as operator:
            await operator.rotate_keys()
            await operator.add(make_connection("globex", company_id="1000002"))
        assert reloads == 1
        after = await running.list()
        assert reloads == 2  # once, for the key it lacked
        assert after[0] == before[0]
        assert [c.name for c in after] == ["acme", "globex"]
        await running.list()
        assert reloads == 2  # the key is loaded now: no more reads of the file


async def test_a_store_without_reload_still_names_the_missing_key(
    database_url: str, key: str
) -> None:
    async with ConnectionStore.open(database_url, ring(key)) as store:
        await store.add(make_connection("acme"))
    async with ConnectionStore.open(database_url, ring(generate_key())) as other:
        with pytest.raises(VaultError, match="not loaded"):
            await other.list()

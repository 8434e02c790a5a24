"""Least privilege on the real PostgreSQL (issue 17, item 7): the owner role owns every table
and applies the migrations; each service's role can do its own work and nothing more;
audit-store appends to the log and reads it, and cannot change, empty or redefine it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from audit_support import fill_log, logged, received, supplier_change
from cli_support import run_cli, write_sandbox_stack

from audit_store.lifecycle import migrate
from audit_store.partitions import PartitionKeeper, month_start, partition_names
from mlconnector.audit.export import ExportFolder
from mlconnector.audit.rows import log_entry
from mlconnector.audit.verify import verify_log
from mlconnector.database_roles import (
    GRANTS,
    LOGINS,
    OWNER,
    Passfiles,
    drop_roles,
    role_name,
    set_up_database,
)
from mlconnector.migrations import MigrationsPending, apply_migrations, migration_files
from mlconnector.vault import generate_key
from mlconnector_cli.stack import Stack, drop_database

pytestmark = pytest.mark.integration

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


class RoledDatabase:
    """A fresh database set up as the stack sets up a home's: roles, migrations, grants."""

    def __init__(self, server_url: str, name: str, passfiles: Passfiles) -> None:
        self.server_url = server_url
        self.name = name
        self.passfiles = passfiles

    @property
    def admin_url(self) -> str:
        return self.server_url.rsplit("/", 1)[0] + f"/{self.name}"

    def url(self, who: str) -> str:
        return self.passfiles.database_url(self.admin_url, self.name, who)

    async def set_up(self) -> dict[str, list[str]]:
        admin = await asyncpg.connect(self.admin_url)
        try:
            return await set_up_database(admin, self.passfiles.ensure(self.name))
        finally:
            await admin.close()


@pytest.fixture
async def roled(stack: Stack, tmp_path: Path) -> AsyncIterator[RoledDatabase]:
    name = f"mlc_roles_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(stack.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    database = RoledDatabase(stack.database_url, name, Passfiles(tmp_path / "postgres"))
    try:
        yield database
    finally:
        await drop_database(stack.database_url, name)
        admin = await asyncpg.connect(stack.database_url)
        try:
            await drop_roles(admin, name)
        finally:
            await admin.close()


async def test_audit_store_appends_and_reads_and_can_do_nothing_else(
    roled: RoledDatabase,
) -> None:
    await roled.set_up()
    audit_store = roled.url("audit-store")
    change = supplier_change("50001")
    # What audit-store does: its (already applied) migrations, then a batch appended.
    await fill_log(audit_store, logged([(change, "visma.changes", 0, 0)]))
    conn = await asyncpg.connect(audit_store)
    try:
        assert await conn.fetchval("SELECT current_user") == role_name(roled.name, "audit-store")
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
        for statement in (
            "UPDATE audit_log SET tenant = 'forged'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            "CREATE OR REPLACE VIEW audit_record_status AS SELECT * FROM audit_log WHERE false",
            "DROP VIEW audit_record_status",
            "CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
            "DELETE FROM audit_chain_head",
            "SELECT setval('audit_log_seq_seq', 1)",
            "SELECT nextval('audit_log_seq_seq')",
            "SELECT * FROM connection_secrets",
            "CREATE TABLE audit_log_copy (seq bigint)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
    # The command line's role verifies it, trigger and view checks included: untouched.
    cli = await asyncpg.connect(roled.url("mlconnector-cli"))
    try:
        report = await verify_log(cli)
    finally:
        await cli.close()
    assert report.problems == []
    assert report.rows == 1


async def test_audit_store_makes_and_retires_partitions_only_through_the_owners_functions(
    roled: RoledDatabase, tmp_path: Path
) -> None:
    await roled.set_up()
    audit_store = roled.url("audit-store")
    now = datetime.now(UTC)
    old = month_start(now) - timedelta(days=80)
    change = supplier_change("50001")
    message = received(change, "visma.changes", 0, 0).model_copy(update={"arrived_at": old})
    # A row of a month without a partition: the recorder makes it.
    await fill_log(audit_store, [log_entry(message)])
    old_partition = f"audit_log_{old:%Y_%m}"
    pool = await asyncpg.create_pool(audit_store, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            assert old_partition in await partition_names(conn)
            for statement in (
                f"DROP TABLE {old_partition}",
                f"ALTER TABLE audit_log DETACH PARTITION {old_partition}",
                f"SELECT * FROM {old_partition}",  # noqa: S608 (a name this test made)
                "CREATE TABLE audit_log_2099_01 PARTITION OF audit_log"
                " FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        keeper = PartitionKeeper(
            pool, ahead=1, retention_months=1, export_folder=tmp_path / "exports", interval=60
        )
        assert await keeper.round(now) == [old_partition]
    finally:
        await pool.close()
    cli = await asyncpg.connect(roled.url("mlconnector-cli"))
    try:
        report = await verify_log(cli, exports=ExportFolder(tmp_path / "exports"))
        assert old_partition not in await partition_names(cli)
    finally:
        await cli.close()
    assert report.problems == []
    assert report.rows == 1


async def test_each_role_holds_exactly_its_grants_and_the_owner_owns_every_table(
    roled: RoledDatabase,
) -> None:
    applied = await roled.set_up()
    assert applied["audit-store"] == [name for name, _ in migration_files("audit_store")]
    assert applied["audit-store"][0] == "001_event_log"
    # Again, as every start does: nothing to apply, the same privileges.
    assert not any((await roled.set_up()).values())
    admin = await asyncpg.connect(roled.admin_url)
    try:
        owners = {
            row["relname"]: row["owner"]
            for row in await admin.fetch(
                "SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')"
            )
        }
        assert set(owners.values()) == {role_name(roled.name, OWNER)}
        held = {
            (row["grantee"], row["table_name"], row["privilege_type"])
            for row in await admin.fetch(
                "SELECT grantee, table_name, privilege_type"
                " FROM information_schema.table_privileges"
                " WHERE table_schema = 'public' AND grantee <> $1",
                role_name(roled.name, OWNER),
            )
        }
    finally:
        await admin.close()
    expected = {
        (role_name(roled.name, who), grant.table, privilege)
        for who, grants in GRANTS.items()
        for grant in grants
        for privilege in grant.privileges
    }
    assert held == expected
    assert all(privilege in TABLE_PRIVILEGES for _, _, privilege in held)


async def test_a_service_role_applies_no_migration_and_says_who_must(
    roled: RoledDatabase,
) -> None:
    await roled.set_up()
    conn = await asyncpg.connect(roled.url("basware-writer"))
    try:
        # Applied already: nothing to do, no DDL asked of a role that may not run any.
        assert await apply_migrations(conn, "basware_writer", owner="basware-writer") == []
        # Due (as under a ledger owner that never ran): refused in words naming the fix.
        with pytest.raises(MigrationsPending, match="mlconnector database setup"):
            await apply_migrations(conn, "basware_writer", owner="basware-writer-next")
    finally:
        await conn.close()


async def test_a_database_made_before_the_roles_is_handed_to_the_owner(
    roled: RoledDatabase,
) -> None:
    # A home from before: the superuser ran audit-store's migrations and owns its tables.
    await migrate(roled.admin_url)
    await roled.set_up()
    conn = await asyncpg.connect(roled.url("audit-store"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    finally:
        await conn.close()


async def test_two_databases_on_one_server_have_roles_of_their_own(
    roled: RoledDatabase, stack: Stack, tmp_path: Path
) -> None:
    await roled.set_up()
    other_name = f"mlc_roles_{uuid.uuid4().hex[:10]}"
    other = RoledDatabase(stack.database_url, other_name, Passfiles(tmp_path / "other"))
    admin = await asyncpg.connect(stack.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{other_name}"')
        await other.set_up()
        roles = {r["rolname"] for r in await admin.fetch("SELECT rolname FROM pg_roles")}
        for who in (*LOGINS, OWNER):
            assert {role_name(roled.name, who), role_name(other_name, who)} <= roles
        # A role of one database may not even connect to the other.
        intruder = other.url("audit-store").replace(f"/{other_name}?", f"/{roled.name}?")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(intruder)
    finally:
        await drop_database(stack.database_url, other_name)
        await drop_roles(admin, other_name)
        await admin.close()


async def test_the_command_line_does_its_work_as_its_role(
    roled: RoledDatabase, tmp_path: Path
) -> None:
    await roled.set_up()
    home = tmp_path / "home"
    key_file = tmp_path / "master.key"
    key_file.write_text(generate_key() + "\n")
    # Beside `mlconnector run`: stack.json names the command line's role.
    write_sandbox_stack(
        home, pid=os.getpid(), database_url=roled.url("mlconnector-cli"), master_key_file=key_file
    )
    env = {"PATH": os.environ["PATH"], "MLC_HOME": str(home)}
    secrets = b'{"visma_client_secret": "v-secret", "basware_client_secret": "b-secret"}'
    # What it writes (reads are the grants test's), and verify, which needs a scratch schema.
    commands: list[tuple[list[str], bytes]] = [
        (["connections", "add", "acme", "--sandbox", "--secrets-from-stdin", "--offline",
          "--basware-region", "EU"], secrets),
        (["connections", "schedule", "acme", "supplier", "--every", "5m"], b""),
        (["keys", "rotate"], b""),
        (["users", "add", "ada", "--role", "admin", "--password-from-stdin"],
         b"correct horse battery staple\n"),
        (["users", "remove", "ada"], b""),
        (["audit", "verify"], b""),
        (["replay", "failed", "--dry-run"], b""),
        (["connections", "remove", "acme"], b"y\n"),
    ]  # fmt: skip
    for args, stdin in commands:
        result = run_cli(args, env, stdin)
        assert result.code == 0, (args, result.stderr)

"""The log partitioned by month on the real PostgreSQL: a log from before moves into the
partitions with its rows and chains; a month past the retention is exported and dropped, and
verify follows each chain from the export into the live table, and finds a row changed in
the export."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from audit_support import append_as_before_007, received, supplier_change
from typer.testing import CliRunner

from audit_store.lifecycle import migrate
from audit_store.partitions import PartitionKeeper, add_months, month_start, partition_names
from audit_store.recorder import Recorder
from mlconnector.audit.export import ExportedRow, ExportFolder
from mlconnector.audit.rows import LogEntry, log_entry
from mlconnector.audit.status import StatusFilter, record_statuses
from mlconnector.audit.verify import verify_log
from mlconnector.migrations import _LEDGER as MIGRATIONS_LEDGER
from mlconnector.migrations import apply_migrations, checksum_of, migration_files
from mlconnector_cli.__main__ import app as cli

pytestmark = pytest.mark.integration

TOPIC = "visma.changes"


def entries_at(partition: int, offsets: range, arrived_at: datetime) -> list[LogEntry]:
    found: list[LogEntry] = []
    for offset in offsets:
        message = received(supplier_change(f"R{partition}-{offset}"), TOPIC, partition, offset)
        found.append(log_entry(message.model_copy(update={"arrived_at": arrived_at})))
    return found


async def seeded(database_url: str) -> tuple[str, datetime]:
    """Chain 0: five rows three months ago, three now; chain 1: three rows, all three months
    ago. The name of the old month's partition, and now."""
    now = datetime.now(UTC)
    old = month_start(now) - timedelta(days=80)
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        recorder = Recorder(pool)
        await recorder.append(entries_at(0, range(5), old) + entries_at(1, range(3), old))
        await recorder.append(entries_at(0, range(5, 8), now))
    finally:
        await pool.close()
    return f"audit_log_{old:%Y_%m}", now


async def retire(database_url: str, folder: Path, now: datetime) -> list[str]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        keeper = PartitionKeeper(
            pool, ahead=2, retention_months=1, export_folder=folder, interval=3600
        )
        return await keeper.round(now)
    finally:
        await pool.close()


def verify_command(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["audit", "verify", *args],
        env={"DATABASE_URL": database_url, "MLC_HOME": "/nonexistent-home"},
    )
    return result.exit_code, result.output


async def test_a_retired_month_is_exported_and_verify_follows_the_chain_into_the_live_table(
    database_url: str, tmp_path: Path
) -> None:
    old_partition, now = await seeded(database_url)
    folder = tmp_path / "exports"
    conn = await asyncpg.connect(database_url)
    try:
        assert old_partition in await partition_names(conn)
        assert (await verify_log(conn)).ok
    finally:
        await conn.close()

    assert await retire(database_url, folder, now) == [old_partition]

    conn = await asyncpg.connect(database_url)
    try:
        names = await partition_names(conn)
        # Gone, and this month's and the two after it are there.
        assert old_partition not in names
        assert {f"audit_log_{add_months(month_start(now), i):%Y_%m}" for i in range(3)} <= set(
            names
        )
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 3
        retired = {
            (r["kafka_partition"], r["first_position"], r["last_position"], r["row_count"])
            for r in await conn.fetch("SELECT * FROM audit_log_retired")
        }
        assert retired == {(0, 1, 5, 5), (1, 1, 3, 3)}
        with_export = await verify_log(conn, exports=ExportFolder(folder))
        live_only = await verify_log(conn)
    finally:
        await conn.close()
    assert with_export.ok, with_export.problems
    assert with_export.rows == 11
    assert live_only.ok, live_only.problems
    assert live_only.rows == 3
    heads = ExportFolder(folder).heads()
    assert [(h.partition_name, h.rows) for h in heads] == [(old_partition, 8)]

    code, output = await asyncio.to_thread(verify_command, database_url, "--exports", str(folder))
    assert code == 0, output
    assert "Checked 11 rows in 2 chains: intact." in output

    # One exported row says another supplier name: its hash no longer holds.
    rows_file = ExportFolder(folder).rows_file(old_partition)
    lines = gzip.decompress(rows_file.read_bytes()).decode().splitlines()
    row = ExportedRow.model_validate_json(lines[2])
    body = json.loads(row.stored().message.value or b"{}")
    body["name"] = "Forged AS"
    payload = json.loads(row.payload or "{}")
    payload["name"] = "Forged AS"
    changed = row.model_copy(
        update={
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "payload": json.dumps(payload),
        }
    )
    lines[2] = changed.model_dump_json()
    rows_file.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    conn = await asyncpg.connect(database_url)
    try:
        report = await verify_log(conn, exports=ExportFolder(folder))
    finally:
        await conn.close()
    assert not report.ok
    assert [(p.partition, p.position, p.event_id, p.problem) for p in report.problems] == [
        (
            row.kafka_partition,
            row.chain_position,
            row.event_id,
            "row changed: its content or link does not match its hash",
        )
    ]
    code, output = await asyncio.to_thread(verify_command, database_url, "--exports", str(folder))
    assert code == 1
    assert row.event_id in output

    # Without the export at all, verify says the retired partition's export is missing.
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = await asyncio.to_thread(verify_command, database_url, "--exports", str(empty))
    assert code == 1
    assert f"partition {old_partition} was retired; its export is not in" in output


async def test_the_database_refuses_to_retire_a_month_not_over_or_not_the_oldest(
    database_url: str, tmp_path: Path
) -> None:
    old_partition, now = await seeded(database_url)
    this_month = f"audit_log_{now:%Y_%m}"
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="not the oldest"):
            await conn.fetchval("SELECT audit_log_retire_partition($1, 3)", this_month)
        with pytest.raises(asyncpg.RaiseError, match="holds 8 rows, the export 7"):
            await conn.fetchval("SELECT audit_log_retire_partition($1, 7)", old_partition)
        assert old_partition in await partition_names(conn)
    finally:
        await conn.close()


async def test_a_log_from_before_the_partitions_moves_into_them_with_its_chains(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        # The log as migrations 001 to 005 left it, with rows of three months ago and now.
        await conn.execute(MIGRATIONS_LEDGER)
        for version, sql in migration_files("audit_store"):
            if version >= "006":
                break
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (owner, version, checksum) VALUES ($1, $2, $3)",
                "audit-store",
                version,
                checksum_of(sql),
            )
        assert (
            await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'audit_log'") == b"r"
        )
        now = datetime.now(UTC)
        old = month_start(now) - timedelta(days=80)
        await append_as_before_007(conn, entries_at(0, range(4), old))
        await append_as_before_007(conn, entries_at(0, range(4, 6), now))
        before = [tuple(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY seq")]

        assert await apply_migrations(conn, "audit_store", owner="audit-store") == [
            v for v, _ in migration_files("audit_store") if v >= "006"
        ]
        assert (
            await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'audit_log'") == b"p"
        )
        after = [tuple(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY seq")]
        assert after == before
        assert f"audit_log_{old:%Y_%m}" in await partition_names(conn)
        assert (await verify_log(conn)).ok
        # Every old record has its state, and every old event id is known: sent again, it is
        # not stored twice. New rows take seq on from the old ones.
        states = await record_statuses(conn, StatusFilter())
        assert sorted(s.entity_id for s in states) == [f"R0-{offset}" for offset in range(6)]
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        try:
            recorder = Recorder(pool)
            assert (await recorder.append(entries_at(0, range(5, 6), now))).stored == 0
            assert (await recorder.append(entries_at(0, range(6, 7), now))).stored == 1
        finally:
            await pool.close()
        assert len(await record_statuses(conn, StatusFilter())) == 7
        seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM audit_log ORDER BY seq")]
        assert seqs[-1] == seqs[-2] + 1
        assert (await verify_log(conn)).ok
    finally:
        await conn.close()

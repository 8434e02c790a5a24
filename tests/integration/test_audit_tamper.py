"""Tamper evidence that does not trust the database: each thing a PostgreSQL superuser can do
to the log without breaking a single hash is found by `audit verify`, against a signed
checkpoint kept outside the database and the objects the migrations create.

The statements below are built from values this test read itself: S608 does not apply.
"""
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from audit_support import fill_log, logged, result_for, running_audit_store, supplier_change
from conftest import TopicNames
from typer.testing import CliRunner

from mlconnector.audit.checkpoint import (
    CheckpointFile,
    CheckpointHead,
    current_heads,
    latest_valid,
    sign_checkpoint,
)
from mlconnector.audit.rows import chain_hash, derive
from mlconnector.audit.status import StatusFilter, record_statuses
from mlconnector.audit.stored import fetch_rows
from mlconnector.audit.verify import verify_log
from mlconnector.contracts import ChangeEvent, Outcome
from mlconnector.kafka import event_headers
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector.vault import Keyring, MasterKey, generate_key
from mlconnector_cli.__main__ import app as cli

pytestmark = pytest.mark.integration

TOPIC = "visma.changes"
Tamper = Callable[[asyncpg.Connection], Awaitable[None]]


@pytest.fixture
def key_text() -> str:
    return generate_key()


async def seeded_and_checkpointed(database_url: str, key_text: str, folder: Path) -> Path:
    """Two chains of 5 and 3 rows, and a signed checkpoint of their heads in a file."""
    placed = [(supplier_change(f"P0-{i}"), TOPIC, 0, i) for i in range(5)]
    placed += [(supplier_change(f"P1-{i}"), TOPIC, 1, i) for i in range(3)]
    await fill_log(database_url, logged(placed))
    conn = await asyncpg.connect(database_url)
    try:
        heads = await current_heads(conn)
    finally:
        await conn.close()
    keyring = Keyring(MasterKey.from_base64(key_text))
    file = CheckpointFile(folder / "audit-checkpoints.jsonl")
    file.append(sign_checkpoint(heads, keyring, datetime.now(UTC)))
    return file.path


async def around_the_triggers(conn: asyncpg.Connection, *statements: str) -> None:
    await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    await conn.execute("ALTER TABLE audit_chain_head DISABLE TRIGGER USER")
    for statement in statements:
        await conn.execute(statement)
    await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    await conn.execute("ALTER TABLE audit_chain_head ENABLE TRIGGER USER")


async def cut_the_tail_and_move_the_head_back(conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        "SELECT chain_position, row_hash FROM audit_log"
        " WHERE kafka_partition = 0 AND chain_position = 3"
    )
    assert row is not None
    await around_the_triggers(
        conn,
        "DELETE FROM audit_log WHERE kafka_partition = 0 AND chain_position > 3",
        "UPDATE audit_chain_head SET chain_position = 3, row_hash = "
        f"'\\x{bytes(row['row_hash']).hex()}' WHERE kafka_partition = 0",
    )


async def delete_a_chain_and_its_head(conn: asyncpg.Connection) -> None:
    await around_the_triggers(
        conn,
        "DELETE FROM audit_log WHERE kafka_partition = 1",
        "DELETE FROM audit_chain_head WHERE kafka_partition = 1",
    )


async def rewrite_a_row_and_recompute_the_chain(conn: asyncpg.Connection) -> None:
    """Row 2 of chain 0 says another supplier name; every later hash and the head follow."""
    rows = await fetch_rows(conn, "WHERE kafka_partition = 0 ORDER BY chain_position")
    previous = rows[0].row_hash
    statements = []
    for row in rows[1:]:
        message = row.message
        if row.chain_position == 2:
            body = json.loads(message.value or b"{}")
            body["name"] = "Rewritten AS"
            message = message.model_copy(update={"value": json.dumps(body).encode()})
        new_hash = chain_hash(previous, message, row.chain_position)
        payload = derive(message).payload
        statements.append(
            f"UPDATE audit_log SET body = '\\x{(message.value or b'').hex()}',"
            f" payload = $${payload}$$::jsonb, row_hash = '\\x{new_hash.hex()}'"
            f" WHERE seq = {row.seq}"
        )
        previous = new_hash
    statements.append(
        f"UPDATE audit_chain_head SET row_hash = '\\x{previous.hex()}' WHERE kafka_partition = 0"
    )
    # The head trigger lets only forward moves through: around it as well.
    await around_the_triggers(conn, *statements)


async def swap_two_rows_seq(conn: asyncpg.Connection) -> None:
    """Rows 2 and 4 of chain 0 put back with each other's seq (seq is an identity column: a
    superuser re-inserts with OVERRIDING SYSTEM VALUE)."""
    first, second = [
        r["seq"]
        for r in await conn.fetch(
            "SELECT seq FROM audit_log WHERE kafka_partition = 0 AND chain_position IN (2, 4)"
            " ORDER BY chain_position"
        )
    ]
    await around_the_triggers(
        conn,
        f"CREATE TEMP TABLE moved AS SELECT * FROM audit_log WHERE seq IN ({first}, {second})",
        f"UPDATE moved SET seq = CASE seq WHEN {first} THEN {second} ELSE {first} END",
        f"DELETE FROM audit_log WHERE seq IN ({first}, {second})",
        "INSERT INTO audit_log OVERRIDING SYSTEM VALUE SELECT * FROM moved",
    )


async def drop_the_append_only_trigger(conn: asyncpg.Connection) -> None:
    await conn.execute("DROP TRIGGER audit_log_append_only ON audit_log")


async def hide_a_record_from_the_status_view(conn: asyncpg.Connection) -> None:
    definition = await conn.fetchval("SELECT pg_get_viewdef('audit_record_status'::regclass)")
    await conn.execute(
        "CREATE OR REPLACE VIEW audit_record_status AS SELECT * FROM ("
        f"{definition.rstrip().rstrip(';')}) v WHERE v.entity_id <> 'P0-1'"
    )


async def keep_a_record_out_of_the_state_table(conn: asyncpg.Connection) -> None:
    source = await conn.fetchval(
        "SELECT prosrc FROM pg_proc WHERE proname = 'audit_record_state_refresh'"
    )
    hidden = source.replace(
        "AND v.tenant = touched.tenant;", "AND v.tenant = touched.tenant AND v.entity_id <> 'P0-1';"
    )
    assert hidden != source
    await conn.execute(
        "CREATE OR REPLACE FUNCTION audit_record_state_refresh("
        "tenants text[], entities text[], entity_ids text[], event_ids text[]) RETURNS void"
        f" LANGUAGE plpgsql AS $${hidden}$$"
    )


CASES: list[tuple[Tamper, str]] = [
    (cut_the_tail_and_move_the_head_back, "rows removed at the end"),
    (delete_a_chain_and_its_head, "chain deleted"),
    (rewrite_a_row_and_recompute_the_chain, "chain rewritten"),
    (swap_two_rows_seq, "rows reordered"),
    (drop_the_append_only_trigger, "trigger audit_log_append_only on audit_log is missing"),
    (hide_a_record_from_the_status_view, "view audit_record_status was redefined"),
    (keep_a_record_out_of_the_state_table, "function audit_record_state_refresh was redefined"),
]


@pytest.mark.parametrize(("tamper", "named"), CASES, ids=[c[0].__name__ for c in CASES])
async def test_verify_exits_1_naming_what_a_superuser_did(
    database_url: str, key_text: str, tmp_path: Path, tamper: Tamper, named: str
) -> None:
    checkpoints = await seeded_and_checkpointed(database_url, key_text, tmp_path)
    env = {"DATABASE_URL": database_url, "MLC_MASTER_KEY": key_text}
    args = ["audit", "verify", "--checkpoints", str(checkpoints)]
    intact = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert intact.exit_code == 0, intact.output
    assert "Checked against the signed checkpoint" in intact.output

    conn = await asyncpg.connect(database_url)
    try:
        await tamper(conn)
    finally:
        await conn.close()

    found = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert found.exit_code == 1, found.output
    assert named in found.output


async def test_a_checkpoint_written_without_the_key_is_itself_a_problem(
    database_url: str, key_text: str, tmp_path: Path
) -> None:
    checkpoints = await seeded_and_checkpointed(database_url, key_text, tmp_path)
    file = CheckpointFile(checkpoints)
    forged = sign_checkpoint(
        [CheckpointHead(topic=TOPIC, partition=0, position=1, row_hash="00" * 32)],
        Keyring(MasterKey.from_base64(generate_key())),
        datetime.now(UTC),
    )
    file.append(forged.model_copy(update={"key_id": file.checkpoints()[0].key_id}))
    verdict = latest_valid(file, Keyring(MasterKey.from_base64(key_text)))
    assert verdict.checkpoint == file.checkpoints()[0]
    assert verdict.problem is not None
    assert "not signed by the master key" in verdict.problem


async def test_audit_store_signs_its_heads_and_verify_holds_the_log_to_them(
    kafka_settings: KafkaSettings,
    database_url: str,
    topics: TopicNames,
    key_text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLC_MASTER_KEY", key_text)
    file = CheckpointFile(tmp_path / "checkpoints.jsonl")
    keyring = Keyring(MasterKey.from_base64(key_text))
    events = [supplier_change(f"C{i}") for i in range(8)]
    async with running_audit_store(kafka_settings, database_url, topics, checkpoints=file.path):
        await publish_events_to(kafka_settings, topics[Topic.VISMA_CHANGES], events)

        async def signed_everything() -> bool:
            verdict = latest_valid(file, keyring)
            return verdict.checkpoint is not None and (
                sum(h.position for h in verdict.checkpoint.heads) == len(events)
            )

        await until_true(signed_everything, "a signed checkpoint of all 8 rows")
    conn = await asyncpg.connect(database_url)
    try:
        report = await verify_log(conn, checkpoint=latest_valid(file, keyring).checkpoint)
    finally:
        await conn.close()
    assert report.ok, report.problems
    assert report.checkpoint_taken_at is not None
    assert file.path.stat().st_mode & 0o077 == 0


async def publish_events_to(kafka: KafkaSettings, topic: str, events: list[ChangeEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            headers = [(k, v.encode()) for k, v in event_headers(event).items()]
            await producer.send_and_wait(
                topic, event.model_dump_json().encode(), key=event.key.encode(), headers=headers
            )
    finally:
        await producer.stop()


async def until_true(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


async def test_a_result_that_answers_no_logged_change_moves_no_state(database_url: str) -> None:
    """Anyone who can reach the broker can publish a DeliveryResult: one whose change is not
    in the log, or is another version, is kept in the log but ignored by the status view."""
    change = supplier_change("F-1")
    rejected = result_for(change, Outcome.REJECTED, "name too long")
    forged_change = result_for(supplier_change("F-1", name="Other name"), Outcome.DELIVERED)
    other_version = result_for(change, Outcome.DELIVERED).model_copy(
        update={"event_id": "forged-2", "content_hash": "0" * 64}
    )
    await fill_log(
        database_url,
        logged(
            [
                (change, TOPIC, 0, 0),
                (rejected, "basware.results", 0, 0),
                (forged_change, "basware.results", 0, 1),
                (other_version, "basware.results", 0, 2),
            ]
        ),
    )
    conn = await asyncpg.connect(database_url)
    try:
        statuses = await record_statuses(conn, StatusFilter(entity_id="F-1"))
        logged_results = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE event_type = 'DeliveryResult'"
        )
    finally:
        await conn.close()
    assert [s.state for s in statuses] == ["rejected"]
    assert logged_results == 3

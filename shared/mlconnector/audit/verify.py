"""Verify: walks every chain and reports each row changed or removed behind the database's back.

For every row in chain order: its position follows the previous one (else rows are missing),
its hash is sha256(previous row's stored hash || its content) (else it or its link was
changed), and its derived columns are what its message gives (else they were edited).
At the end of a chain, the last row must be the one its head names (else rows were removed
from the end). Within a chain, `seq` grows with the position (rows are appended under the
head's lock), so two rows whose seq was swapped show.

The log is partitioned by month and old months are retired: exported to files, then dropped
(export.py). A chain runs on across partitions and exports: with the exports at hand, their
rows are checked first, from each chain's start, and the live rows must link to the last
exported one; without, a chain is checked from where the database recorded its retired rows
ended.

What the database alone cannot prove is caught against the latest signed checkpoint kept
outside it (checkpoint.py): a chain rewritten with its head, a chain deleted with its head, a
tail cut off with the head moved back. And the objects that keep the log honest are compared
with the ones the migrations create (definitions.py): the append-only triggers and their
function, and the status view.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from mlconnector.audit.checkpoint import Checkpoint, CheckpointHead
from mlconnector.audit.definitions import definition_problems
from mlconnector.audit.export import ExportFolder
from mlconnector.audit.rows import GENESIS_HASH, DerivedFields, chain_hash, derive
from mlconnector.audit.stored import SELECT_ROW, Connection, StoredRow, stored_row

_COMPARED_FIELDS = (
    "event_id",
    "event_type",
    "replay_of",
    "correlation_id",
    "tenant",
    "entity",
    "entity_id",
    "event_time",
)


class Problem(BaseModel):
    # None for a problem of the database's objects rather than of one chain.
    topic: str | None
    partition: int | None
    position: int | None = None
    seq: int | None = None
    event_id: str | None = None
    problem: str


class ChainSummary(BaseModel):
    topic: str
    partition: int
    rows: int
    head_position: int | None
    head_hash: str | None


class VerifyScope(BaseModel):
    """What verify covered besides the live table."""

    retired_partitions: int
    # The exports checked, or None when none was looked at.
    export_folder: str | None


class VerifyReport(BaseModel):
    rows: int
    chains: list[ChainSummary]
    problems: list[Problem]
    # The signed checkpoint the log was checked against, if any.
    checkpoint_taken_at: datetime | None = None
    scope: VerifyScope | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _payloads_differ(stored: str | None, expected: str | None) -> bool:
    if stored is None or expected is None:
        return stored is not expected
    # jsonb normalises spacing, key order and number spelling: compare the values.
    return bool(json.loads(stored) != json.loads(expected))


def changed_columns(stored: DerivedFields, expected: DerivedFields) -> list[str]:
    changed = [f for f in _COMPARED_FIELDS if getattr(stored, f) != getattr(expected, f)]
    if _payloads_differ(stored.payload, expected.payload):
        changed.append("payload")
    return changed


class ChainChecker:
    """Checks one chain, fed its rows in position order."""

    def __init__(
        self,
        topic: str,
        partition: int,
        checkpointed: CheckpointHead | None = None,
        start: tuple[int, bytes] = (0, GENESIS_HASH),
    ) -> None:
        """`start`: the position and hash the rows fed follow (a retired partition's end)."""
        self.topic = topic
        self.partition = partition
        self.rows = 0
        self._position, self._hash = start
        self._seq = 0
        self._checkpointed = checkpointed

    @property
    def reached(self) -> tuple[int, bytes]:
        """The position and hash of the last row fed (or of the start)."""
        return self._position, self._hash

    def _problem(self, row: StoredRow | None, text: str) -> Problem:
        return Problem(
            topic=self.topic,
            partition=self.partition,
            position=row.chain_position if row else None,
            seq=row.seq if row else None,
            event_id=row.event_id if row else None,
            problem=text,
        )

    def check(self, row: StoredRow) -> list[Problem]:
        self.rows += 1
        problems: list[Problem] = []
        expected_position = self._position + 1
        if row.chain_position != expected_position:
            missing = (
                f"position {expected_position}"
                if row.chain_position == expected_position + 1
                else f"positions {expected_position}-{row.chain_position - 1}"
            )
            problems.append(self._problem(row, f"rows removed before this one ({missing})"))
        elif chain_hash(self._hash, row.message, row.chain_position) != row.row_hash:
            # After a gap the link cannot be checked: the row it pointed at is gone.
            problems.append(
                self._problem(row, "row changed: its content or link does not match its hash")
            )
        if row.seq <= self._seq:
            problems.append(
                self._problem(row, f"rows reordered: seq {row.seq} follows seq {self._seq}")
            )
        checkpointed = self._checkpointed
        if (
            checkpointed is not None
            and row.chain_position == checkpointed.position
            and row.row_hash.hex() != checkpointed.row_hash
        ):
            problems.append(
                self._problem(
                    row, "chain rewritten: this row's hash is not the one the checkpoint signed"
                )
            )
        changed = changed_columns(row.derived, derive(row.message))
        if changed:
            verb = "differs" if len(changed) == 1 else "differ"
            problems.append(
                self._problem(row, f"row changed: {', '.join(changed)} {verb} from its message")
            )
        self._position = row.chain_position
        self._hash = row.row_hash
        self._seq = row.seq
        return problems

    def finish(self, head: tuple[int, bytes] | None) -> list[Problem]:
        checkpointed = self._checkpointed
        if checkpointed is not None and self._position < checkpointed.position:
            what = (
                "chain deleted"
                if not self.rows
                else f"rows removed at the end: the chain ends at position {self._position}"
            )
            return [
                self._problem(
                    None,
                    f"{what}; the signed checkpoint holds it up to position "
                    f"{checkpointed.position}",
                )
            ]
        if head is None:
            return [self._problem(None, "chain has rows but no head")] if self.rows else []
        position, head_hash = head
        if position > self._position:
            return [
                self._problem(
                    None,
                    f"rows removed at the end: the head is at position {position}, "
                    f"the last row at {self._position}",
                )
            ]
        if position != self._position or head_hash != self._hash:
            return [self._problem(None, "the head does not match the chain's last row")]
        return []

    def summary(self, head: tuple[int, bytes] | None) -> ChainSummary:
        return ChainSummary(
            topic=self.topic,
            partition=self.partition,
            rows=self.rows,
            head_position=head[0] if head else None,
            head_hash=head[1].hex() if head else None,
        )


class LogVerifier:
    """Checks a whole log, fed each chain's rows in position order (chains may interleave:
    an export's rows, then the next export's, then the live table's)."""

    def __init__(
        self,
        heads: dict[tuple[str, int], tuple[int, bytes]],
        checkpoint: Checkpoint | None = None,
        starts: dict[tuple[str, int], tuple[int, bytes]] | None = None,
    ) -> None:
        """`starts`: where chains begin that have rows retired and not fed (their export
        not checked): the position and hash of the last retired row."""
        self._heads = heads
        self._checkpointed = (
            {(h.topic, h.partition): h for h in checkpoint.heads} if checkpoint else {}
        )
        self._starts = starts or {}
        self._checkers: dict[tuple[str, int], ChainChecker] = {}
        self.report = VerifyReport(
            rows=0,
            chains=[],
            problems=[],
            checkpoint_taken_at=checkpoint.taken_at if checkpoint else None,
        )

    def checker(self, chain: tuple[str, int]) -> ChainChecker:
        checker = self._checkers.get(chain)
        if checker is None:
            checker = self._checkers[chain] = ChainChecker(
                *chain,
                self._checkpointed.get(chain),
                self._starts.get(chain, (0, GENESIS_HASH)),
            )
        return checker

    def feed(self, row: StoredRow) -> None:
        self.report.rows += 1
        self.report.problems.extend(
            self.checker((row.message.topic, row.message.partition)).check(row)
        )

    def finish(self) -> VerifyReport:
        for chain in sorted(set(self._heads) | set(self._checkpointed) | set(self._starts)):
            self.checker(chain)
        for chain, checker in sorted(self._checkers.items()):
            head = self._heads.get(chain)
            self.report.problems.extend(checker.finish(head))
            self.report.chains.append(checker.summary(head))
        self._checkers = {}
        return self.report


def check_rows(
    rows: Iterable[StoredRow],
    heads: dict[tuple[str, int], tuple[int, bytes]],
    checkpoint: Checkpoint | None = None,
) -> VerifyReport:
    verifier = LogVerifier(heads, checkpoint)
    for row in rows:
        verifier.feed(row)
    return verifier.finish()


def _retired_ends(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], tuple[int, bytes]]:
    """Each chain's last retired row: where its live rows (or its next export) continue."""
    ends: dict[tuple[str, int], tuple[int, bytes]] = {}
    for r in records:
        chain = (r["topic"], r["kafka_partition"])
        if chain not in ends or r["last_position"] > ends[chain][0]:
            ends[chain] = (r["last_position"], bytes(r["last_hash"]))
    return ends


def _feed_exports(
    verifier: LogVerifier, folder: ExportFolder, retired: Sequence[Mapping[str, Any]]
) -> None:
    """Every export's rows through the checks, each export against its own heads file and
    the database's record of the partition; a retired partition without its export, or an
    export of a partition the database never retired, is a problem."""
    problems = verifier.report.problems
    in_database: dict[str, dict[tuple[str, int], Mapping[str, Any]]] = {}
    for r in retired:
        in_database.setdefault(r["partition_name"], {})[(r["topic"], r["kafka_partition"])] = r
    exported: set[str] = set()
    for heads in folder.heads():
        name = heads.partition_name
        exported.add(name)
        if name not in in_database and heads.rows:
            problems.append(_database_problem(f"export {name} is of no partition retired here"))
        before = {
            (c.topic, c.partition): verifier.checker((c.topic, c.partition)).reached
            for c in heads.chains
        }
        try:
            for row in folder.rows(name):
                verifier.feed(row)
        except (OSError, EOFError, ValueError) as error:
            problems.append(_database_problem(f"export {name} is unreadable: {error}"))
            continue
        for chain in heads.chains:
            key = (chain.topic, chain.partition)
            after = verifier.checker(key).reached
            recorded = in_database.get(name, {}).get(key)
            if (
                before[key][1].hex() != chain.previous_hash
                or after != (chain.last_position, bytes.fromhex(chain.last_hash))
                or (
                    recorded is not None
                    and after != (recorded["last_position"], bytes(recorded["last_hash"]))
                )
            ):
                problems.append(
                    Problem(
                        topic=chain.topic,
                        partition=chain.partition,
                        position=after[0],
                        problem=f"export {name} does not end where its heads and the "
                        "database's record of the retired partition say",
                    )
                )
    for name in sorted(in_database.keys() - exported):
        problems.append(
            _database_problem(f"partition {name} was retired; its export is not in {folder.path}")
        )


def _database_problem(text: str) -> Problem:
    return Problem(topic=None, partition=None, problem=text)


async def verify_log(
    conn: Connection,
    *,
    checkpoint: Checkpoint | None = None,
    exports: ExportFolder | None = None,
    fetch_size: int = 1000,
) -> VerifyReport:
    """Streams the whole log in chain order through the checks, against `checkpoint` when
    given, then compares the log's triggers and status view with the migrations'. With
    `exports`, the retired partitions' rows come first, from their exports; without, each
    chain is checked from where its retired rows ended."""
    # One REPEATABLE READ snapshot for rows and heads, while audit-store keeps appending.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        heads = {
            (r["topic"], r["kafka_partition"]): (r["chain_position"], bytes(r["row_hash"]))
            for r in await conn.fetch(
                "SELECT topic, kafka_partition, chain_position, row_hash FROM audit_chain_head"
            )
        }
        retired = await _retired(conn)
        verifier = LogVerifier(heads, checkpoint, None if exports else _retired_ends(retired))
        if exports is not None:
            await asyncio.to_thread(_feed_exports, verifier, exports, retired)
        query = f"{SELECT_ROW} ORDER BY topic, kafka_partition, chain_position"
        async for record in conn.cursor(query, prefetch=fetch_size):
            verifier.feed(stored_row(record))
    report = verifier.finish()
    report.scope = VerifyScope(
        retired_partitions=len({r["partition_name"] for r in retired}),
        export_folder=str(exports.path) if exports else None,
    )
    report.problems.extend(_database_problem(text) for text in await definition_problems(conn))
    return report


async def _retired(conn: Connection) -> list[Mapping[str, Any]]:
    """What the retired partitions held, chain by chain; none before the log was partitioned."""
    if not await conn.fetchval("SELECT to_regclass('audit_log_retired') IS NOT NULL"):
        return []
    return list(
        await conn.fetch(
            "SELECT partition_name, topic, kafka_partition, last_position, last_hash"
            " FROM audit_log_retired ORDER BY partition_name"
        )
    )

"""Verify: walks every chain and reports each row changed or removed behind the database's back.

For every row in chain order: its position follows the previous one (else rows are missing),
its hash is sha256(previous row's stored hash || its content) (else it or its link was
changed), and its derived columns are what its message gives (else they were edited).
At the end of a chain, the last row must be the one its head names (else rows were removed
from the end). Within a chain, `seq` grows with the position (rows are appended under the
head's lock), so two rows whose seq was swapped show.

What the database alone cannot prove is caught against the latest signed checkpoint kept
outside it (checkpoint.py): a chain rewritten with its head, a chain deleted with its head, a
tail cut off with the head moved back. And the objects that keep the log honest are compared
with the ones the migrations create (definitions.py): the append-only triggers and their
function, and the status view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel

from mlconnector.audit.checkpoint import Checkpoint, CheckpointHead
from mlconnector.audit.definitions import definition_problems
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


class VerifyReport(BaseModel):
    rows: int
    chains: list[ChainSummary]
    problems: list[Problem]
    # The signed checkpoint the log was checked against, if any.
    checkpoint_taken_at: datetime | None = None

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
        self, topic: str, partition: int, checkpointed: CheckpointHead | None = None
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.rows = 0
        self._position = 0
        self._hash = GENESIS_HASH
        self._seq = 0
        self._checkpointed = checkpointed

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
    """Checks a whole log, fed its rows sorted by (topic, partition, position)."""

    def __init__(
        self,
        heads: dict[tuple[str, int], tuple[int, bytes]],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self._heads = heads
        self._checkpointed = (
            {(h.topic, h.partition): h for h in checkpoint.heads} if checkpoint else {}
        )
        self._checker: ChainChecker | None = None
        self.report = VerifyReport(
            rows=0,
            chains=[],
            problems=[],
            checkpoint_taken_at=checkpoint.taken_at if checkpoint else None,
        )

    def _checker_for(self, topic: str, partition: int) -> ChainChecker:
        return ChainChecker(topic, partition, self._checkpointed.get((topic, partition)))

    def _close(self, checker: ChainChecker) -> None:
        head = self._heads.get((checker.topic, checker.partition))
        self.report.problems.extend(checker.finish(head))
        self.report.chains.append(checker.summary(head))

    def feed(self, row: StoredRow) -> None:
        chain = (row.message.topic, row.message.partition)
        checker = self._checker
        if checker is None or (checker.topic, checker.partition) != chain:
            if checker is not None:
                self._close(checker)
            checker = self._checker = self._checker_for(*chain)
        self.report.rows += 1
        self.report.problems.extend(checker.check(row))

    def finish(self) -> VerifyReport:
        if self._checker is not None:
            self._close(self._checker)
            self._checker = None
        seen = {(c.topic, c.partition) for c in self.report.chains}
        for chain in sorted((set(self._heads) | set(self._checkpointed)) - seen):
            self._close(self._checker_for(*chain))
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


async def verify_log(
    conn: Connection, *, checkpoint: Checkpoint | None = None, fetch_size: int = 1000
) -> VerifyReport:
    """Streams the whole log in chain order through the checks, against `checkpoint` when
    given, then compares the log's triggers and status view with the migrations'."""
    # One REPEATABLE READ snapshot for rows and heads, while audit-store keeps appending.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        heads = {
            (r["topic"], r["kafka_partition"]): (r["chain_position"], bytes(r["row_hash"]))
            for r in await conn.fetch(
                "SELECT topic, kafka_partition, chain_position, row_hash FROM audit_chain_head"
            )
        }
        verifier = LogVerifier(heads, checkpoint)
        query = f"{SELECT_ROW} ORDER BY topic, kafka_partition, chain_position"
        async for record in conn.cursor(query, prefetch=fetch_size):
            verifier.feed(stored_row(record))
    report = verifier.finish()
    report.problems.extend(
        Problem(topic=None, partition=None, problem=text)
        for text in await definition_problems(conn)
    )
    return report

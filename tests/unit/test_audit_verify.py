"""Verify's checks on chains built in memory: what each kind of tampering looks like."""

from __future__ import annotations

from audit_chains import VALUE, chain

from mlconnector.audit.verify import VerifyReport, check_rows


def problems(report: VerifyReport) -> list[tuple[int | None, int | None, str]]:
    return [(p.partition, p.position, p.problem) for p in report.problems]


def test_an_untouched_log_is_intact() -> None:
    rows0, heads0 = chain(0, 5)
    rows1, heads1 = chain(1, 3, seq=10)
    report = check_rows(rows0 + rows1, heads0 | heads1)
    assert report.ok
    assert report.rows == 8
    assert [(c.partition, c.rows, c.head_position) for c in report.chains] == [
        (0, 5, 5),
        (1, 3, 3),
    ]


def test_a_changed_value_breaks_its_own_hash_only() -> None:
    rows, heads = chain(0, 4)
    # The same JSON in other bytes: only the hash, which covers the bytes, can tell.
    message = rows[1].message.model_copy(update={"value": VALUE + b" "})
    rows[1] = rows[1].model_copy(update={"message": message})
    assert problems(check_rows(rows, heads)) == [
        (0, 2, "row changed: its content or link does not match its hash")
    ]


def test_a_changed_derived_column_differs_from_its_message() -> None:
    rows, heads = chain(0, 3)
    derived = rows[2].derived.model_copy(update={"entity_id": "S2", "tenant": "x"})
    rows[2] = rows[2].model_copy(update={"derived": derived})
    assert problems(check_rows(rows, heads)) == [
        (0, 3, "row changed: tenant, entity_id differ from its message")
    ]


def test_jsonb_spelling_of_the_same_payload_is_no_change() -> None:
    rows, heads = chain(0, 1)
    as_postgres_writes_it = '{"n": 1.0, "entity": "supplier", "tenant": "t", "entity_id": "S1"}'
    derived = rows[0].derived.model_copy(update={"payload": as_postgres_writes_it})
    assert check_rows([rows[0].model_copy(update={"derived": derived})], heads).ok


def test_a_removed_row_shows_as_a_gap_before_the_next() -> None:
    rows, heads = chain(0, 6)
    del rows[2:4]
    assert problems(check_rows(rows, heads)) == [
        (0, 5, "rows removed before this one (positions 3-4)")
    ]


def test_rows_removed_at_the_end_show_against_the_head() -> None:
    rows, heads = chain(0, 4)
    assert problems(check_rows(rows[:3], heads)) == [
        (0, None, "rows removed at the end: the head is at position 4, the last row at 3")
    ]
    assert problems(check_rows([], heads)) == [
        (0, None, "rows removed at the end: the head is at position 4, the last row at 0")
    ]


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link() -> None:
    rows, heads = chain(0, 3)
    rows[1] = rows[1].model_copy(update={"row_hash": b"\x07" * 32})
    found = problems(check_rows(rows, heads))
    assert (0, 2, "row changed: its content or link does not match its hash") in found
    assert (0, 3, "row changed: its content or link does not match its hash") in found
    assert (0, None, "the head does not match the chain's last row") not in found


def test_a_chain_without_a_head_is_reported() -> None:
    rows, _ = chain(0, 2)
    assert problems(check_rows(rows, {})) == [(0, None, "chain has rows but no head")]

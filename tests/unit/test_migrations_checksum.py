"""A migration's checksum covers its statements, not its comments."""

from __future__ import annotations

from mlconnector.migrations import checksum_of, statements_of


def test_comments_do_not_count_but_quoted_text_and_bodies_do() -> None:
    sql = "CREATE TABLE t (a text -- why\n); -- more\nSELECT '--x', $$ -- kept $$;\n"
    assert statements_of(sql) == "CREATE TABLE t (a text\n);\nSELECT '--x', $$ -- kept $$;"
    assert checksum_of(sql) == checksum_of(sql.replace("-- why", "-- because, said at length"))
    assert checksum_of(sql) != checksum_of(sql.replace("text", "integer"))
    assert checksum_of(sql) != checksum_of(sql.replace("'--x'", "'--y'"))
    assert checksum_of(sql) != checksum_of(sql.replace("-- kept", "-- changed"))

"""The partition calendar and the export's row format, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

from audit_chains import chain

from audit_store.partitions import add_months, due_for_retirement, months_ahead, partition_month
from mlconnector.audit.export import ExportedRow
from mlconnector.audit.stored import LOG_COLUMNS
from mlconnector.audit.verify import LogVerifier


def test_partitions_ahead_are_this_month_and_the_next_ones_across_a_year() -> None:
    assert months_ahead(datetime(2026, 11, 30, 23, 59, tzinfo=UTC), 2) == [
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    ]
    assert add_months(datetime(2026, 1, 1, tzinfo=UTC), -13) == datetime(2024, 12, 1, tzinfo=UTC)


def test_a_month_retires_once_all_of_it_is_older_than_the_retention_oldest_first() -> None:
    names = ["audit_log_2026_01", "audit_log_2025_11", "audit_log_2025_12", "audit_log_other"]
    december = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert due_for_retirement(names, december, 12) == ["audit_log_2025_11"]
    january = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert due_for_retirement(names, january, 12) == ["audit_log_2025_11", "audit_log_2025_12"]
    assert partition_month("audit_log_other") is None


def test_an_exported_row_reads_back_as_the_row_it_was() -> None:
    rows, heads = chain(0, 3)
    exported = []
    for row in rows:
        m, d = row.message, row.derived
        record = dict(
            zip(
                ("seq", *LOG_COLUMNS),
                (
                    row.seq,
                    m.topic,
                    m.partition,
                    m.offset,
                    m.key,
                    '[["event-id", "' + (m.headers[0][1] or b"").decode() + '"]]',
                    m.value,
                    m.kafka_time,
                    m.arrived_at,
                    row.chain_position,
                    row.row_hash,
                    *d.model_dump().values(),
                ),
                strict=True,
            )
        )
        exported.append(
            ExportedRow.model_validate_json(ExportedRow.from_record(record).model_dump_json())
        )
    assert [e.stored() for e in exported] == rows
    # Fed as an export and then as nothing more, the chain is whole and reaches its head.
    verifier = LogVerifier(heads)
    for e in exported:
        verifier.feed(e.stored())
    assert verifier.finish().ok

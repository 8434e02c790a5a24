"""Splitting bulk upserts to Basware's per-request limits."""

from __future__ import annotations

import itertools

import pytest

from mlconnector.basware import BaswarePayloadTooLarge, split_batches
from mlconnector.basware.batching import encode


def records(count: int, filler: int = 0) -> list[dict[str, object]]:
    return [{"externalCode": f"R-{i}", "name": "x" * filler} for i in range(count)]


def test_batches_hold_at_most_the_record_limit_in_order() -> None:
    batches = split_batches(records(450), max_records=200)

    assert [len(b) for b in batches] == [200, 200, 50]
    assert [r["externalCode"] for b in batches for r in b] == [f"R-{i}" for i in range(450)]


def test_batches_stay_within_the_byte_limit_as_sent() -> None:
    items = records(100, filler=1000)

    batches = split_batches(items, max_records=200, max_bytes=10_000)

    assert len(batches) > 1
    assert all(len(encode(b)) <= 10_000 for b in batches)
    # Full batches are really full: one more record would not have fitted.
    for batch, following in itertools.pairwise(batches):
        assert len(encode([*batch, following[0]])) > 10_000
    assert sum(len(b) for b in batches) == 100


def test_a_record_larger_than_a_request_is_refused_before_sending() -> None:
    with pytest.raises(BaswarePayloadTooLarge, match="R-0"):
        split_batches(records(1, filler=2000), max_records=200, max_bytes=1000)


def test_no_records_make_no_batches() -> None:
    assert split_batches([], max_records=200) == []

"""Splitting bulk upserts into requests within Basware's limits (records per request, 6 MB)."""

from __future__ import annotations

import json
from typing import Any

from mlconnector.basware.errors import BaswarePayloadTooLarge

MAX_REQUEST_BYTES = 6 * 1024 * 1024
VENDOR_BATCH_LIMIT = 200
MATCHING_ORDER_BATCH_LIMIT = 500
MATCHING_ORDER_LINE_BATCH_LIMIT = 100
# accounts, costCenters, projects, taxCodes, paymentTerms, lists (docs/basware-p2p.md §5.2).
MASTER_DATA_BATCH_LIMIT = 500


def encode(document: Any) -> bytes:
    """A request body: compact JSON, measured exactly as it is sent."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def split_batches(
    records: list[dict[str, Any]], *, max_records: int, max_bytes: int = MAX_REQUEST_BYTES
) -> list[list[dict[str, Any]]]:
    """Consecutive batches, in order, each within both limits."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 2  # the brackets
    for record in records:
        record_size = len(encode([record])) - 2
        if record_size + 2 > max_bytes:
            raise BaswarePayloadTooLarge(
                f"record {record.get('externalCode')!r} alone is {record_size} bytes, "
                f"over Basware's {max_bytes}-byte request limit"
            )
        separator = 1 if current else 0
        if current and (len(current) >= max_records or size + separator + record_size > max_bytes):
            batches.append(current)
            current, size, separator = [], 2, 0
        current.append(record)
        size += separator + record_size
    if current:
        batches.append(current)
    return batches

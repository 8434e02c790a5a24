"""Records as JSON bytes: cached content plus the server-managed fields added per answer."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from visma_sandbox.config import SandboxSettings
from visma_sandbox.entities import EntitySpec
from visma_sandbox.store import StoredRecord
from visma_sandbox.timefmt import render_datetime


def _shown(moment: datetime, stored: StoredRecord, settings: SandboxSettings) -> str:
    """A server timestamp as answers show it: skewed, in the configured style."""
    skewed = moment + timedelta(seconds=settings.clock_skew_seconds)
    return render_datetime(skewed, settings.timestamp_style, stored.row_version)


def time_stamp(row_version: int) -> str:
    """The `timeStamp` field and ETag: a SQL rowversion, base64 of 8 big-endian bytes."""
    return base64.b64encode(row_version.to_bytes(8, "big")).decode()


def list_metadata(total_count: int, max_page_size: int) -> bytes:
    return b',"metadata":{"totalCount":%d,"maxPageSize":%d}' % (total_count, max_page_size)


def render_record(
    stored: StoredRecord,
    spec: EntitySpec,
    settings: SandboxSettings,
    *,
    omit: frozenset[str] = frozenset(),
    metadata: bytes = b"",
) -> bytes:
    cache_key = (omit, settings.timestamp_style.value, settings.clock_skew_seconds)
    body = stored.rendered.get(cache_key)
    if body is None:
        modified = _shown(stored.last_modified, stored, settings)
        fields = [b'"lastModifiedDateTime":"%s"' % modified.encode()]
        if spec.renders_created:
            created = _shown(stored.created, stored, settings)
            fields.append(b'"createdDateTime":"%s"' % created.encode())
        stamp = time_stamp(stored.row_version).encode()
        fields.append(b'"timeStamp":"%s","errorInfo":null' % stamp)
        body = stored.content(omit)[:-1] + b"," + b",".join(fields) + b"}"
        stored.rendered[cache_key] = body
    return body[:-1] + metadata + b"}" if metadata else body


def render_dimension(
    stored: StoredRecord, settings: SandboxSettings, *, expand_values: bool = True
) -> dict[str, Any]:
    """A dimension with its segments and values, each stamped as Visma's OpenAPI file shows them.

    Segments carry `lastModified` and `timeStamp`, values `lastModified`: the dimension's own,
    since the sandbox stores a dimension as one record.
    """
    modified = _shown(stored.last_modified, stored, settings)
    body: dict[str, Any] = stored.record.model_dump(mode="json", by_alias=True, exclude_none=True)
    for segment in body["segments"]:
        segment["lastModified"] = modified
        segment["timeStamp"] = time_stamp(stored.row_version)
        for value in segment["segmentValues"]:
            value["lastModified"] = modified
        if not expand_values:
            del segment["segmentValues"]
    return body

"""Exports of retired partitions: a month of the log in a compressed file, with its chain ends.

audit-store writes one when the deployment's retention has passed for a month (before it
drops the partition); verify reads them back, so the chain is checked from its first row
through the exports into the live table. Per partition, in the export folder:
- `<partition>.jsonl.gz`: every row, one JSON object per line, in chain order;
- `<partition>.heads.json`: for each chain, its first position and the hash before it, its
  last position and its hash, and the row count.

Rows keep every column, bytes as base64 and the hash as hex: verify recomputes each hash from
the message exactly as it does for a live row, so an exported row changed in the file shows.
"""

from __future__ import annotations

import base64
import gzip
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.audit.stored import StoredRow, stored_row
from mlconnector.home import HomeFolder

EXPORT_FOLDER_NAME = "audit-exports"
ROWS_SUFFIX = ".jsonl.gz"
HEADS_SUFFIX = ".heads.json"


class ExportSettings(BaseSettings):
    """AUDIT_STORE_EXPORT_DIR: written by audit-store, read by verify."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_STORE_", extra="ignore")

    # Unset: the home folder's `audit-exports/` (MLC_HOME, default .mlconnector/).
    export_dir: Path | None = None

    def export_path(self) -> Path:
        return self.export_dir or HomeFolder.from_env().root / EXPORT_FOLDER_NAME


class ExportedRow(BaseModel):
    """One row of the log as a line of an export."""

    seq: int
    topic: str
    kafka_partition: int
    kafka_offset: int
    message_key: str | None  # base64
    headers: str  # the jsonb text
    body: str | None  # base64
    kafka_time: datetime | None
    arrived_at: datetime
    chain_position: int
    row_hash: str  # hex
    event_id: str
    event_type: str | None
    replay_of: str | None
    correlation_id: str | None
    payload: str | None  # the jsonb text
    tenant: str | None
    entity: str | None
    entity_id: str | None
    event_time: datetime

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ExportedRow:
        fields = dict(record)
        for name in ("message_key", "body"):
            value = fields[name]
            fields[name] = base64.b64encode(value).decode() if value is not None else None
        fields["row_hash"] = bytes(fields["row_hash"]).hex()
        return cls.model_validate(fields)

    def stored(self) -> StoredRow:
        fields: dict[str, Any] = self.model_dump()
        for name in ("message_key", "body"):
            value = fields[name]
            fields[name] = base64.b64decode(value) if value is not None else None
        fields["row_hash"] = bytes.fromhex(self.row_hash)
        return stored_row(fields)


class ExportedChain(BaseModel):
    topic: str
    partition: int
    first_position: int
    previous_hash: str  # hex: the hash before the first row (the chain's start, or the
    # last row of the partition retired before)
    last_position: int
    last_hash: str  # hex
    rows: int


class ExportHeads(BaseModel):
    partition_name: str
    range_from: datetime
    range_to: datetime
    rows: int
    exported_at: datetime
    chains: list[ExportedChain]


def _write_atomically(path: Path, data_path: Path) -> None:
    with open(data_path, "rb") as file:
        os.fsync(file.fileno())
    data_path.replace(path)


class ExportWriter:
    """Writes one partition's export: rows first, in chain order, then the heads; each file
    appears whole under its name or not at all (written aside, then renamed)."""

    def __init__(self, folder: Path, partition_name: str) -> None:
        self.folder = folder
        self.partition_name = partition_name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._rows_aside = folder / f".{partition_name}{ROWS_SUFFIX}.partial"
        self._file = gzip.open(self._rows_aside, "wt", encoding="utf-8")  # noqa: SIM115

    def write(self, rows: list[ExportedRow]) -> None:
        self._file.write("".join(row.model_dump_json() + "\n" for row in rows))

    def finish(self, heads: ExportHeads) -> None:
        self._file.close()
        _write_atomically(self.folder / f"{self.partition_name}{ROWS_SUFFIX}", self._rows_aside)
        heads_aside = self.folder / f".{self.partition_name}{HEADS_SUFFIX}.partial"
        heads_aside.write_text(heads.model_dump_json(indent=2) + "\n")
        _write_atomically(self.folder / f"{self.partition_name}{HEADS_SUFFIX}", heads_aside)

    def abandon(self) -> None:
        self._file.close()
        self._rows_aside.unlink(missing_ok=True)


class ExportFolder:
    """The exports in a folder, oldest partition first."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def heads(self) -> list[ExportHeads]:
        if not self.path.is_dir():
            return []
        found = [
            ExportHeads.model_validate_json(file.read_text())
            for file in self.path.glob(f"*{HEADS_SUFFIX}")
        ]
        # Partition names are audit_log_YYYY_MM: their order is the months'.
        return sorted(found, key=lambda h: h.partition_name)

    def rows_file(self, partition_name: str) -> Path:
        return self.path / f"{partition_name}{ROWS_SUFFIX}"

    def rows(self, partition_name: str) -> Iterator[StoredRow]:
        with gzip.open(self.rows_file(partition_name), "rt", encoding="utf-8") as file:
            for line in file:
                yield ExportedRow.model_validate_json(line).stored()

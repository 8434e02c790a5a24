"""audit-store settings (AUDIT_STORE_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.home import HomeFolder

CHECKPOINT_FILE_NAME = "audit-checkpoints.jsonl"


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_STORE_", extra="ignore")

    # Its own consumer group: the log sees every message whatever the other services do.
    consumer_group: str = "audit-store"
    # Up to this many messages go to PostgreSQL in one transaction.
    batch_max_records: int = Field(default=2000, ge=1)
    # How long a fetch waits for a batch to fill before writing what it has.
    batch_timeout_ms: int = Field(default=200, ge=0)
    # A failed write is retried, with backoff up to this, until it succeeds: offsets are
    # committed only for messages in the log, so nothing is skipped.
    retry_cap_seconds: float = Field(default=30.0, gt=0)
    # Signed checkpoints of the chain heads, outside PostgreSQL (checkpoint.py). Unset: the
    # home folder's `audit-checkpoints.jsonl` (MLC_HOME, default .mlconnector/).
    checkpoint_file: Path | None = None
    checkpoint_interval_seconds: float = Field(default=60.0, gt=0)

    def checkpoints_path(self) -> Path:
        return self.checkpoint_file or HomeFolder.from_env().root / CHECKPOINT_FILE_NAME

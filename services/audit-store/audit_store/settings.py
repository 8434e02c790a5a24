"""audit-store settings (AUDIT_STORE_* environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mlconnector.audit.checkpoint import CheckpointSettings
from mlconnector.audit.export import ExportSettings


class AuditSettings(CheckpointSettings, ExportSettings):
    """With the signed checkpoints' settings (mlconnector.audit.checkpoint) and the export
    folder's (mlconnector.audit.export)."""

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
    # The log's monthly partitions (audit_store/partitions.py): this month's and this many
    # after it exist at every moment.
    partitions_ahead_months: int = Field(default=3, ge=1)
    # Unset: the log is kept for ever. Else a month's partition is exported and dropped once
    # the whole month is this many months old.
    retention_months: int | None = Field(default=None, ge=1)
    # How often partitions are made ahead and retention applied.
    maintenance_interval_seconds: float = Field(default=3600.0, gt=0)

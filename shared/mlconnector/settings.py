"""Settings shared by every service, read from environment variables (documented in README)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """KAFKA_*: where the broker is and how clients talk to it."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=12, ge=1)
    # Apache Kafka refuses session timeouts under 6 s by default; the embedded Tansu
    # broker accepts 2 s, which makes group joins quick (docs/broker.md §4).
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    fetch_max_wait_ms: int = 20
    linger_ms: int = 10
    max_batch_size: int = 262_144
    # What a consumer fetches ahead of its handler. aiokafka's defaults (1 MiB per partition,
    # 50 MiB per fetch) fill up while a consumer lags, as the writer does in a backfill: a
    # consumer 60,000 messages of 3 KB behind grew by 50 MB on them, and by none with these.
    max_partition_fetch_bytes: int = Field(default=262_144, ge=1024)
    fetch_max_bytes: int = Field(default=2_097_152, ge=1024)


class DatabaseSettings(BaseSettings):
    """DATABASE_URL: the PostgreSQL that holds cursors, parked records, credentials and the log."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/mlconnector"


class ServiceSettings(BaseSettings):
    """Settings every service process reads."""

    model_config = SettingsConfigDict(env_prefix="MLC_", extra="ignore")

    log_level: str = "INFO"
    # Where /healthz and /metrics (and the gateway's webhooks) are served.
    http_host: str = "127.0.0.1"
    http_port: int = 0

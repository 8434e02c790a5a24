"""Settings shared by every service, read from environment variables (documented in README)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSettings(BaseSettings):
    """KAFKA_*: where the broker is and how clients talk to it."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Authentication (docker-compose.yml: SCRAM-SHA-512, one principal per service). The
    # password comes from KAFKA_SASL_PASSWORD or, better, a file (KAFKA_SASL_PASSWORD_FILE).
    security_protocol: KafkaSecurityProtocol = KafkaSecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    # SASL_SSL: the CA that signed the broker's certificate (else the system's).
    ssl_cafile: Path | None = None
    partitions: int = Field(default=12, ge=1)
    # Apache Kafka refuses session timeouts under 6 s by default; the embedded Tansu
    # broker accepts 2 s, which makes group joins quick (docs/event-broker.md §4).
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    fetch_max_wait_ms: int = 20
    # A consumer that saw no new message for `idle_after_seconds` waits this long per empty
    # fetch instead (idle_fetch.py): an idle pipeline stops spinning on empty fetches.
    idle_fetch_max_wait_ms: int = Field(default=200, ge=0)
    idle_after_seconds: float = Field(default=10.0, gt=0)
    linger_ms: int = 10
    max_batch_size: int = 262_144
    # What a consumer fetches ahead of its handler. aiokafka's defaults (1 MiB per partition,
    # 50 MiB per fetch) fill up while a consumer lags, as the writer does in a backfill: a
    # consumer 60,000 messages of 3 KB behind grew by 50 MB on them, and by none with these.
    max_partition_fetch_bytes: int = Field(default=262_144, ge=1024)
    fetch_max_bytes: int = Field(default=2_097_152, ge=1024)

    @model_validator(mode="after")
    def _credentials_with_sasl(self) -> KafkaSettings:
        if self.security_protocol is not KafkaSecurityProtocol.PLAINTEXT and not (
            self.sasl_username and (self.sasl_password or self.sasl_password_file)
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol.value} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"
            )
        return self

    def password(self) -> SecretStr:
        """The SASL password: the variable's, else the first line of the file."""
        if self.sasl_password is not None:
            return self.sasl_password
        if self.sasl_password_file is None:
            raise ValueError("no KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE")
        lines = self.sasl_password_file.read_text(encoding="utf-8").splitlines()
        return SecretStr(lines[0].strip() if lines else "")


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

from __future__ import annotations

import os
import socket
import uuid

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from basware_writer.domain import Stage
from mlconnector.retry import Backoff
from mlconnector.topics import Topic


def default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class WriterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BASWARE_WRITER_")

    changes_topic: str = Topic.VISMA_CHANGES.value
    results_topic: str = Topic.BASWARE_RESULTS.value
    # Names this process in claims on pending records, uploads and parked keys.
    instance: str = Field(default_factory=default_instance)
    # Up to this many change events are taken from Kafka per batch, then grouped by tenant
    # and entity; a batch's events and payloads are what the writer's memory peaks with
    # (README, Benchmarks).
    batch_max_records: int = Field(default=250, ge=1)
    batch_timeout_ms: int = Field(default=200, ge=1)
    # How long a batch waits for Basware's requestStatus before the request is left to the
    # follow-up (recorded in PostgreSQL) and the partition moves on.
    status_wait_seconds: float = Field(default=10.0, ge=0)
    # How long a pending request is followed before the records it carries count as failed.
    request_status_timeout_seconds: float = Field(default=3600.0, gt=0)
    # An upload whose answer was lost is looked for in Basware this long before it is re-sent
    # (Basware may still be reading the PDF). An upload a dead writer claimed but never sent
    # is looked for once and sent at once.
    upload_confirm_seconds: float = Field(default=900.0, ge=0)
    # Lookups of such uploads (GET /v1/accountingDocuments/status) are paced: each one at
    # most once per interval, and at most this many per follow-up round of an instance.
    upload_lookup_interval_seconds: float = Field(default=60.0, ge=0)
    upload_lookups_per_round: int = Field(default=20, ge=1)
    # The follow-up (pending requests, unconfirmed uploads, parked keys) runs this often.
    follow_up_interval_seconds: float = Field(default=5.0, gt=0)
    # Parked keys (tenant:supplier) released at once, in one delivery per tenant.
    release_max_keys: int = Field(default=500, ge=1)
    # Uploads parked for Visma's quota taken up again per follow-up round of an instance,
    # once the window reset (docs/visma-net.md §8.3).
    quota_resumes_per_round: int = Field(default=500, ge=1)
    # Liveness of writer instances: claims of an instance not seen for the timeout are taken.
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    instance_timeout_seconds: float = Field(default=30.0, gt=0)
    # Basware pushing back (429, 5xx, no answer, token route included) is waited out with
    # backoff for up to this long before a record is `failed`; `max_attempts` can bound the
    # attempts as well (none by default). A batch's retries all end by its own start plus
    # the horizon (docs/basware-p2p.md §10.6).
    retry_horizon_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)
    # How long a batch's work may take besides its waits (retries, requestStatus). The
    # consumer's poll interval (aiokafka's max_poll_interval_ms) is set from the work:
    # this, plus the retry horizon, plus a requestStatus wait per stage, so a batch that
    # waits out a storm is not taken from this writer and handed to another meanwhile.
    batch_work_seconds: float = Field(default=300.0, gt=0)
    backoff_base_seconds: float = Field(default=0.2, gt=0)
    backoff_cap_seconds: float = Field(default=30.0, gt=0)
    # Basware HTTP calls open at once per tenant (its region), per writer process.
    requests_in_flight: int = Field(default=32, ge=1)
    # Invoice PDFs fetched from Visma and uploaded to Basware at the same time, per tenant.
    invoice_concurrency: int = Field(default=32, ge=1)
    # The request budget per tenant and region, shared by all writer instances: requests
    # per second, how many may go at once, the floor 429s can push the rate down to, and
    # how long the rate takes to climb back from zero to `rate_per_second`.
    rate_per_second: float = Field(default=50.0, gt=0)
    rate_burst: float = Field(default=20.0, ge=1)
    rate_min_per_second: float = Field(default=1.0, gt=0)
    rate_recovery_seconds: float = Field(default=30.0, gt=0)

    def backoff(self) -> Backoff:
        return Backoff(
            base_seconds=self.backoff_base_seconds,
            cap_seconds=self.backoff_cap_seconds,
            max_attempts=self.max_attempts,
            horizon_seconds=self.retry_horizon_seconds,
        )

    def max_poll_interval_ms(self) -> int:
        """The longest a batch can take: its work, its retries' horizon, and the
        requestStatus wait of each upsert stage (vendors, order headers, lines)."""
        seconds = (
            self.batch_work_seconds
            + self.retry_horizon_seconds
            + len(Stage) * self.status_wait_seconds
        )
        return int(seconds * 1000)

"""visma-reader settings (VISMA_READER_* environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.topics import Topic


class ReaderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISMA_READER_", extra="ignore")

    # Default schedule; a connection's own schedule overrides it.
    poll_interval_seconds: float = Field(default=30.0, gt=0)
    # A connection runs at most one early (notified) poll cycle per interval; notifications
    # in between merge into the next. Worst case, four Visma calls per interval: 2,880 an
    # hour at 5 s, a fifth of the hourly quota (docs/visma-net.md §8.1).
    early_poll_interval_seconds: float = Field(default=5.0, ge=0)
    # How long a reader's lease on a connection lasts without renewal (leases.py): how soon
    # the connections of a reader that died are polled by the others. Renewed three times
    # per lease; a reader also counts as live for this long after its last renewal.
    lease_seconds: float = Field(default=30.0, gt=0)
    # The name this reader holds its leases under; unique among the readers running. By
    # default host and process id, so a reader started again waits out its predecessor's
    # leases; a stable name per slot (a systemd unit, a pod of a StatefulSet) takes them back
    # at once.
    instance: str | None = None
    # Connections of the reader's database pool: every poll of every stream queries it a few
    # times, so with many companies it bounds the poll cycles per second (README, capacity).
    database_pool_size: int = Field(default=10, ge=1)
    # How often the list of connections is read again, so that one added or removed while
    # the reader runs is polled or left alone without a restart.
    connections_refresh_seconds: float = Field(default=10.0, gt=0)
    # Re-read this far below the cursor: the zone of Visma's timestamps is not published,
    # and rows change while a scan pages (docs/visma-net.md §5.2, §6.2). Dedupe absorbs the
    # re-reads.
    # It must exceed the zone offset plus the duration of the longest scan.
    overlap_seconds: float = Field(default=7200.0, ge=0)
    page_size: int = Field(default=1000, ge=1)
    # How many times a window is read again in one poll when rows left it while it was paged
    # (a deletion); after that the cursor stays and the next poll tries again.
    rescans: int = Field(default=2, ge=0)
    # How often a stream's whole list is read again (0: never): the safety net for what an
    # incremental window cannot see. Dedupe publishes only what differs; it costs
    # totalCount / page_size calls per stream.
    full_scan_interval_seconds: float = Field(default=86400.0, ge=0)
    # A backfill logs its progress at most this often.
    progress_log_seconds: float = Field(default=10.0, gt=0)
    # How often the broker's epoch marks are read (broker_watch.py): how soon a broker that
    # lost what it held (a new, empty one at the same address; a topic deleted) is found
    # and recovered from the database.
    broker_check_seconds: float = Field(default=5.0, gt=0)
    changes_topic: str = Topic.VISMA_CHANGES.value
    notifications_topic: str = Topic.VISMA_NOTIFICATIONS.value
    # Not read: watched for loss with the two above (a lost result leaves its change pending).
    results_topic: str = Topic.BASWARE_RESULTS.value

"""RECONCILER_*: how often each connection is reconciled, whether a scheduled run heals, and
the Basware budget's rates."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.schedule import CronSchedule, IntervalSchedule, parse_schedule
from mlconnector.topics import Topic


class ReconcilerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILER_", extra="ignore")

    # `1d`-style interval or `cron:<expression>` (UTC), for every connection...
    schedule: str = "1d"
    # ...unless named here: {"connection name": "cron:0 2 * * *"}.
    schedules: dict[str, str] = Field(default_factory=dict)
    # Whether a scheduled run re-publishes what is missing or different, as `--heal` does.
    heal: bool = False
    changes_topic: str = Topic.VISMA_CHANGES.value
    # How often the scheduler looks for a due connection (and for new connections).
    check_interval_seconds: float = Field(default=60.0, gt=0)
    # The shared Basware request budget (the writer's BASWARE_WRITER_RATE_* say the same;
    # the slowest setting of all processes wins a 429).
    rate_per_second: float = Field(default=50.0, gt=0)
    rate_burst: float = Field(default=20.0, ge=1)
    rate_min_per_second: float = Field(default=1.0, gt=0)
    rate_recovery_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _schedules_read(self) -> ReconcilerSettings:
        for text in (self.schedule, *self.schedules.values()):
            parse_schedule(text)  # a ValueError names the text
        return self

    def schedule_of(self, connection: str) -> IntervalSchedule | CronSchedule:
        return parse_schedule(self.schedules.get(connection, self.schedule))

"""Console settings (MLC_CONSOLE_* environment variables, documented in README)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.home import StackEndpoint


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLC_CONSOLE_", extra="ignore")

    # How long a login lasts without use.
    session_idle_minutes: float = Field(default=60.0, gt=0)
    # Consecutive wrong passwords that lock a user out, and for how long.
    lockout_failures: int = Field(default=5, ge=1)
    lockout_minutes: float = Field(default=15.0, gt=0)
    # Cookies only over HTTPS (browsers treat http://localhost as secure too). Off only
    # behind a proxy that terminates TLS and talks plain HTTP to a non-local console.
    secure_cookies: bool = True
    # The services whose /readyz and /metrics the Overview shows, as JSON:
    # [{"name": ..., "url": ..., "setting": ...}]. Unset: those of the local stack's
    # stack.json (MLC_HOME).
    services: list[StackEndpoint] | None = None
    # How often the Overview page reloads itself, and the least time between two samples of
    # the sync's state (a sample over a large log waits ten times its own duration).
    refresh_seconds: int = Field(default=5, ge=1)
    sample_seconds: float = Field(default=5.0, gt=0)
    # How many records the Records page and the preview show at most.
    page_size: int = Field(default=50, ge=1, le=1000)
    preview_records: int = Field(default=3, ge=1, le=20)

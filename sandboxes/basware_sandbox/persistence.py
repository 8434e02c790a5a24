"""The sandbox's state saved to `<state-dir>/basware.json` and put back on the next start.

Saved: every tenant whole (the records as the API layer holds them and as P2P accepted them,
requestStatus entries, accounting documents, uploads with their PDFs, subscriptions with
their tokens, tasks, deletions, matched quantities), the API clients provisioned through the
back door, the request log with its counters and sequence, and the webhook log. A request or
an upload still waiting for its verdict is processed again after the restart. Not saved:
tokens (a new signing key: old tokens answer 401), faults, latency, clock moves, a paused
pipeline, parked S3 exports and webhook deliveries under way.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from basware_sandbox.config import ApiClient, SandboxConfig
from basware_sandbox.records import RequestLogEntry, WebhookAttempt
from basware_sandbox.state import SandboxState, Tenant
from mlconnector.saved_state import SAVED_STATE_CONTEXT, StateSaver

STATE_FILE_NAME = "basware.json"
# The requestStatus of a request the pipeline has not decided yet.
IN_PROGRESS = "InProgress"


class SavedSandbox(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    clients: list[ApiClient]
    tenants: list[Tenant]
    request_log: list[RequestLogEntry]
    log_seq: int
    counters: dict[str, int]
    webhook_log: list[WebhookAttempt]


def saved_sandbox(state: SandboxState) -> SavedSandbox:
    return SavedSandbox(
        clients=list(state.clients.values()),
        tenants=list(state.tenants.values()),
        request_log=list(state.request_log),
        log_seq=state.log_seq,
        counters=dict(state.counters),
        webhook_log=list(state.webhook_log),
    )


def restored_state(saved: SavedSandbox, config: SandboxConfig) -> SandboxState:
    """A new state holding what `saved` holds; hosts and settings come from `config`.

    Runs in the event loop that will serve the state: unfinished requests and uploads go
    back into its pipeline.
    """
    state = SandboxState(config)
    state.tenants = {(tenant.host.name, tenant.bwcid): tenant for tenant in saved.tenants}
    # The configured clients last: a client in the configuration is as configured now.
    for client in [*saved.clients, *config.clients]:
        state.register_client(client)
    state.request_log = deque(saved.request_log, maxlen=config.request_log_limit)
    state.log_seq = saved.log_seq
    state.counters.update(saved.counters)
    state.webhook_log = list(saved.webhook_log)
    for tenant in state.tenants.values():
        _requeue_unfinished(state, tenant)
    return state


def _requeue_unfinished(state: SandboxState, tenant: Tenant) -> None:
    """Requests first, in arrival order, then uploads: orders before the invoices on them."""
    waiting = [r for r in tenant.requests.values() if r.status == IN_PROGRESS]
    for request in sorted(waiting, key=lambda r: r.received_at):
        state.pipeline.submit(tenant, request_id=request.request_id)
    for upload in tenant.uploads.values():
        if upload.received and upload.outcome is None:
            state.pipeline.submit(tenant, bum_id=upload.bum_id)


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE_NAME


def load_state(state_dir: Path, config: SandboxConfig) -> SandboxState | None:
    """The state saved in `state_dir` (see `restored_state`); None when nothing is saved."""
    try:
        raw = state_file(state_dir).read_bytes()
    except FileNotFoundError:
        return None
    return restored_state(SavedSandbox.model_validate_json(raw), config)


def _snapshot(state: SandboxState) -> bytes:
    return saved_sandbox(state).model_dump_json(context=SAVED_STATE_CONTEXT).encode()


@contextlib.asynccontextmanager
async def saving(state: SandboxState, state_dir: Path) -> AsyncIterator[Path]:
    """Keeps `state_dir` up to date while the block runs; yields the state file's path."""
    saver = StateSaver(state_file(state_dir), lambda: _snapshot(state), lambda: state.revision)
    async with saver.running():
        yield saver.path

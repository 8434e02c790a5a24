"""The sandbox's state saved to `<state-dir>/visma.json` and put back on the next start.

Saved: the companies with every record (its lastModifiedDateTime, createdDateTime and row
version), each company's row-version counter, webhook subscriptions (with their secrets),
notifications and feedback, and the request log with its per-route counts. Everything else
is rebuilt from the configuration on start: tokens (a new signing key, so old tokens answer
401), quotas, repeat rules, faults, page hooks, background jobs and settings changed through
the back door. A new supplier still gets a new number, as numbers follow the highest one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationInfo, field_validator

from mlconnector.saved_state import SAVED_STATE_CONTEXT, StateSaver
from visma_sandbox.config import CompanyInfo, SandboxConfig
from visma_sandbox.entities import SPECS, EntityName
from visma_sandbox.requestlog import LoggedRequest
from visma_sandbox.schemas import Dto
from visma_sandbox.state import CompanyState, SandboxState
from visma_sandbox.store import StoredRecord
from visma_sandbox.webhooks import Notification, Subscription, WebhookFeedback

STATE_FILE_NAME = "visma.json"


class SavedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SavedRecord(SavedModel):
    entity: EntityName
    record: SerializeAsAny[Dto]
    last_modified: datetime
    created: datetime
    row_version: int

    @field_validator("record", mode="plain")
    @classmethod
    def _record_of_its_entity(cls, value: object, info: ValidationInfo) -> Dto:
        schema = SPECS[info.data["entity"]].schema
        return value if isinstance(value, schema) else schema.model_validate(value)


class SavedCompany(SavedModel):
    info: CompanyInfo
    row_version: int
    records: list[SavedRecord]


class SavedRouteCount(SavedModel):
    company_id: str | None
    route: str
    calls: int


class SavedRequestLog(SavedModel):
    entries: list[LoggedRequest]
    route_counts: list[SavedRouteCount]
    last_seq: int


class SavedSandbox(SavedModel):
    """The whole file."""

    companies: list[SavedCompany]
    subscriptions: list[Subscription]
    notifications: list[Notification]
    feedback: list[WebhookFeedback]
    request_log: SavedRequestLog


def _saved_company(company: CompanyState) -> SavedCompany:
    return SavedCompany(
        info=company.info,
        row_version=company.row_version,
        records=[
            SavedRecord(
                entity=entity,
                record=stored.record,
                last_modified=stored.last_modified,
                created=stored.created,
                row_version=stored.row_version,
            )
            for entity, table in company.tables.items()
            for stored in table
        ],
    )


def saved_sandbox(state: SandboxState) -> SavedSandbox:
    log = state.log
    return SavedSandbox(
        companies=[_saved_company(company) for company in state.companies.values()],
        subscriptions=list(state.webhooks.subscriptions.values()),
        notifications=list(state.webhooks.notifications.values()),
        feedback=list(state.webhooks.feedback),
        request_log=SavedRequestLog(
            entries=log.entries(),
            route_counts=[
                SavedRouteCount(company_id=company_id, route=route, calls=calls)
                for (company_id, route), calls in log.route_counts().items()
            ],
            last_seq=log.last_seq,
        ),
    )


def restored_state(saved: SavedSandbox, config: SandboxConfig | None = None) -> SandboxState:
    """A new state holding what `saved` holds; the rest comes from `config`."""
    state = SandboxState(config)
    for company in saved.companies:
        rows: dict[EntityName, list[StoredRecord]] = {entity: [] for entity in SPECS}
        for row in company.records:
            rows[row.entity].append(
                StoredRecord(
                    key=SPECS[row.entity].key_of(row.record),
                    record=row.record,
                    last_modified=row.last_modified,
                    created=row.created,
                    row_version=row.row_version,
                )
            )
        state.add_company(company.info).restore(rows, row_version=company.row_version)
    state.webhooks.subscriptions = {s.id: s for s in saved.subscriptions}
    state.webhooks.notifications = {n.id: n for n in saved.notifications}
    state.webhooks.feedback = list(saved.feedback)
    state.log.restore(
        saved.request_log.entries,
        {(c.company_id, c.route): c.calls for c in saved.request_log.route_counts},
        saved.request_log.last_seq,
    )
    return state


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE_NAME


def load_state(state_dir: Path, config: SandboxConfig | None = None) -> SandboxState | None:
    """The state saved in `state_dir`; None when nothing is saved there yet."""
    path = state_file(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return restored_state(SavedSandbox.model_validate_json(raw), config)


def _snapshot(state: SandboxState) -> bytes:
    # exclude_defaults: records are mostly unset optional fields, a third of the file.
    text = saved_sandbox(state).model_dump_json(exclude_defaults=True, context=SAVED_STATE_CONTEXT)
    return text.encode()


@contextlib.asynccontextmanager
async def saving(state: SandboxState, state_dir: Path) -> AsyncIterator[Path]:
    """Keeps `state_dir` up to date while the block runs; yields the state file's path."""
    saver = StateSaver(state_file(state_dir), lambda: _snapshot(state), lambda: state.revision)
    async with saver.running():
        yield saver.path

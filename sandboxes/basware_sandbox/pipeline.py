"""The asynchronous target-system stage: what happens after a POST has been answered 200.

Accepted requests (and uploaded invoices) wait `processing_delay_seconds` in arrival order,
then get their verdict: per item Success, Error (with category and message), NotProcessed
(identical to what P2P already has) or RecordExpired (a newer post of the same record arrived
within `record_expired_window_seconds`). Tests can pause the stage to line up re-posts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from basware_sandbox.entities import ENTITY_APIS
from basware_sandbox.records import ItemError, ItemStatus, RequestRecord
from basware_sandbox.rules import item_errors

if TYPE_CHECKING:
    from basware_sandbox.state import SandboxState, Tenant

RECORD_EXPIRED = "A newer version of the record was received before this one was processed"


@dataclass(frozen=True)
class Job:
    due: float  # event-loop time
    tenant: Tenant
    request_id: str | None = None
    bum_id: str | None = None


class Pipeline:
    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._jobs: deque[Job] = deque()
        self._changed = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._paused = False
        self._worker: asyncio.Task[None] | None = None

    def clear(self) -> None:
        self._jobs.clear()
        self._empty.set()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="basware-sandbox-pipeline")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._changed.set()

    async def drain(self) -> None:
        if self._paused and self._jobs:
            raise RuntimeError("processing is paused; resume it before draining")
        await self._empty.wait()

    def submit(
        self, tenant: Tenant, *, request_id: str | None = None, bum_id: str | None = None
    ) -> None:
        due = asyncio.get_running_loop().time() + self._state.config.processing_delay_seconds
        self._jobs.append(Job(due=due, tenant=tenant, request_id=request_id, bum_id=bum_id))
        self._empty.clear()
        self._changed.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs or self._paused:
                self._changed.clear()
                await self._changed.wait()
                continue
            wait = self._jobs[0].due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            job = self._jobs.popleft()
            try:
                self._process(job)
            finally:
                self._state.changed()
                if not self._jobs:
                    self._empty.set()
            # A backlog is worked off between HTTP requests, not instead of them.
            await asyncio.sleep(0)

    def _process(self, job: Job) -> None:
        from basware_sandbox.documents import process_upload

        if job.request_id is not None:
            request = job.tenant.requests.get(job.request_id)
            if request is not None:
                process_request(self._state, job.tenant, request)
        if job.bum_id is not None:
            process_upload(self._state, job.tenant, job.bum_id)


def process_request(state: SandboxState, tenant: Tenant, request: RequestRecord) -> None:
    window = state.config.record_expired_window_seconds
    api = ENTITY_APIS.get(request.api or "")
    for item in request.items:
        record = item.record
        if api is None or record is None:
            item.status = ItemStatus.SUCCESS
            continue
        latest = tenant.records[api.path].get(item.external_code)
        previous = tenant.accepted[api.path].get(item.external_code)
        if (
            latest is not None
            and latest.request_id != request.request_id
            and 0 <= latest.received_at - record.received_at <= window
        ):
            item.status = ItemStatus.RECORD_EXPIRED
            item.errors = [
                ItemError(type="RecordExpired", category="Unknown", message=RECORD_EXPIRED)
            ]
        elif previous is not None and previous.content_hash == record.content_hash:
            item.status = ItemStatus.NOT_PROCESSED
        elif errors := item_errors(api, record.body, tenant.company_codes, tenant.index):
            item.status = ItemStatus.ERROR
            item.errors = errors
        else:
            item.status = ItemStatus.SUCCESS
            tenant.accepted[api.path][item.external_code] = record
            tenant.index.accept(api, record.body)
    failed = any(item.status is ItemStatus.ERROR for item in request.items)
    request.status = "Error" if failed else "Success"
    request.last_updated = state.clock.utcnow()
    state.notifier.request_finished(tenant, request)

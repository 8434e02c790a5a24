"""The small protocols the executor works through: Basware's calls for one tenant, Visma's
attachments, and the writer's PostgreSQL state. basware_calls.py, invoice_pdfs.py and
stores/ implement them; unit tests can stand in for any of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import date, datetime
from typing import Protocol

from basware_writer.domain import (
    Accepted,
    KnownState,
    LiveUpload,
    PendingRecord,
    RecordRef,
    Stage,
    UploadIntent,
)
from basware_writer.planner import UpsertBatch
from mlconnector.basware.models import AcceptedRequest, InvoiceStatus, RequestStatus
from mlconnector.contracts import ChangeEvent
from mlconnector.mapping import InvoicePayload
from mlconnector.visma.ratelimit import QuotaLane


class UploadUncertain(Exception):
    """The PDF may or may not have reached Basware (the PUT got no answer)."""


class BaswareCalls(Protocol):
    """One tenant's Basware calls, each within the tenant's slots and budget and retried
    (backoff.py); each answer comes with the attempts it took. RetriesExhausted after the
    last attempt; BaswareError subclasses for what retrying cannot fix."""

    async def region(self) -> str | None: ...

    async def upsert(
        self, stage: Stage, batch: UpsertBatch
    ) -> tuple[list[AcceptedRequest], int]: ...

    async def request_status(self, request_id: str) -> RequestStatus | None:
        """The request's status, or None when Basware cannot tell now (not visible yet,
        or unreachable)."""
        ...

    async def upload_pdf(
        self, pdf: bytes, inbox: str, putting: Callable[[], Awaitable[None]]
    ) -> tuple[str, int]:
        """SmartPDF's two steps, `putting` awaited just before the PUT (from then on the
        document may exist); the document's bumId. UploadUncertain when the PUT got no
        answer."""
        ...

    async def find_invoice(
        self, company_code: str, invoice_number: str, invoice_date: date
    ) -> list[InvoiceStatus]: ...


class VismaAttachments(Protocol):
    async def get_attachment(
        self, attachment_id: str, *, lane: QuotaLane = ..., wait_for_quota: bool = ...
    ) -> bytes: ...


class InvoicePdfs(Protocol):
    """The PDF an invoice is uploaded as (Visma's attachment, or rendered), carrying it."""

    async def pdf_of(self, payload: InvoicePayload, lane: QuotaLane) -> bytes: ...


class KnownStateReader(Protocol):
    async def known_state(
        self,
        tenant: str,
        refs: Sequence[RecordRef],
        suppliers: Collection[str],
        releasing: Collection[str],
    ) -> KnownState: ...


class PendingRequests(Protocol):
    async def record(
        self, tenant: str, records: Sequence[PendingRecord], owner: str
    ) -> list[PendingRecord]: ...

    async def advance(self, tenant: str, records: Sequence[PendingRecord]) -> None: ...

    async def hand_off(self, tenant: str, records: Sequence[PendingRecord], owner: str) -> None: ...

    async def settle(
        self, tenant: str, done: Sequence[PendingRecord], accepted: Sequence[Accepted]
    ) -> None: ...


class UploadClaims(Protocol):
    async def claim_new(
        self, tenant: str, intents: Sequence[UploadIntent], owner: str
    ) -> tuple[list[UploadIntent], list[tuple[UploadIntent, str | None]]]: ...

    async def live_uploads(
        self, tenant: str, intents: Sequence[UploadIntent]
    ) -> dict[str, LiveUpload]: ...

    async def replace(self, tenant: str, intent: UploadIntent, owner: str) -> bool: ...

    async def take_over_waiting(
        self, tenant: str, intent: UploadIntent, owner: str, timeout_seconds: float
    ) -> UploadIntent | None: ...

    async def wait_for_quota(
        self, tenant: str, intents: Sequence[tuple[UploadIntent, datetime]], owner: str
    ) -> None: ...

    async def uploaded(
        self, tenant: str, done: Sequence[tuple[UploadIntent, str | None]]
    ) -> None: ...

    async def abandon(self, tenant: str, intents: Sequence[UploadIntent]) -> None: ...

    async def hand_off(self, tenant: str, intents: Sequence[UploadIntent], owner: str) -> None: ...

    async def restart(self, tenant: str, intent: UploadIntent) -> None: ...

    async def sending(self, tenant: str, intent: UploadIntent) -> None: ...

    async def put_answered(self, tenant: str, intent: UploadIntent, bum_id: str) -> None: ...

    async def looked_up(self, tenant: str, intents: Sequence[UploadIntent]) -> None: ...


class ParkedChanges(Protocol):
    async def park(
        self,
        tenant: str,
        parked: Sequence[tuple[ChangeEvent, str]],
        owner: str,
        timeout_seconds: float,
    ) -> set[str]: ...

    async def unclaim(self, owner: str, tenant: str, suppliers: Collection[str]) -> None: ...


class WriterState(KnownStateReader, Protocol):
    """All of the writer's PostgreSQL state a delivery touches, and whose claims it makes."""

    @property
    def owner(self) -> str: ...

    @property
    def pending(self) -> PendingRequests: ...

    @property
    def uploads(self) -> UploadClaims: ...

    @property
    def parked(self) -> ParkedChanges: ...

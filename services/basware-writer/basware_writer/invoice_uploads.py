"""Invoice uploads of one tenant through SmartPDF (docs/basware-api.md §10.2, §10.8): each
invoice is claimed in PostgreSQL before its upload starts, so it reaches Basware as one
document; an upload whose PUT got no answer is looked for in Basware before it is sent again.
A later Visma version of an uploaded invoice is not uploaded: it is an exception naming
Basware's document, until a forced replay finds that document gone or rejected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from pypdf.errors import PyPdfError

from basware_writer.domain import LiveUpload, Outcomes, UploadIntent, Verdict, fan_out, reason
from basware_writer.planner import UploadStep, prepare
from basware_writer.ports import BaswareCalls, InvoicePdfs, UploadUncertain, WriterState
from basware_writer.verdicts import (
    changed_after_upload,
    document_gone_or_rejected,
    failed,
    rejected_by_http,
    reupload_refused,
)
from mlconnector.basware.errors import BaswareError, BaswareRejected
from mlconnector.basware.models import InvoiceStatus
from mlconnector.contracts import Outcome
from mlconnector.mapping import InvoicePayload
from mlconnector.retry import RetriesExhausted
from mlconnector.visma.errors import VismaError

log = logging.getLogger(__name__)


class UploadOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    intent: UploadIntent
    verdict: Verdict | None  # None: uncertain, left to the follow-up
    bum_id: str | None = None


class InvoiceUploads:
    def __init__(
        self,
        tenant: str,
        basware: BaswareCalls,
        pdfs: InvoicePdfs,
        state: WriterState,
        *,
        company_code: str | None,
        inbox: str | None,
        concurrency: int,
        confirm_seconds: float,
    ) -> None:
        self.tenant = tenant
        self._basware = basware
        self._pdfs = pdfs
        self._state = state
        self._company = company_code
        self._inbox = inbox or ""
        self._slots = asyncio.Semaphore(concurrency)
        self._confirm_seconds = confirm_seconds

    async def send(self, step: UploadStep) -> Outcomes:
        """Claims the step's invoices and uploads those no writer started before."""
        outcomes = Outcomes(deliveries=list(step.finished))
        if not step.intents:
            return outcomes
        payloads = {
            (intent.change.entity_id, intent.payload_hash): payload
            for intent, payload in zip(step.intents, step.payloads, strict=True)
        }
        state = self._state
        claimed, done_before = await state.uploads.claim_new(self.tenant, step.intents, state.owner)
        for intent, bum_id in done_before:
            verdict = Verdict(
                outcome=Outcome.DELIVERED,
                attempts=0,
                request_id=bum_id,
                reasons=reason("Unchanged", "this invoice version was uploaded before"),
            )
            outcomes.deliveries += fan_out(intent.changes, verdict)
        taken = {id(i) for i in claimed} | {id(i) for i, _ in done_before}
        later, verdicts = await self._later_versions(
            [i for i in step.intents if id(i) not in taken]
        )
        claimed += later
        for intent, verdict in verdicts:
            outcomes.deliveries += fan_out(intent.changes, verdict)
        uploads = await asyncio.gather(
            *(
                self._upload(intent, payloads[(intent.change.entity_id, intent.payload_hash)])
                for intent in claimed
            )
        )
        outcomes.add(await self._settled(uploads))
        return outcomes

    async def _later_versions(
        self, intents: Sequence[UploadIntent]
    ) -> tuple[list[UploadIntent], list[tuple[UploadIntent, Verdict]]]:
        """Intents not claimed because their invoice has a live upload of another version:
        the forced ones whose Basware document is gone or rejected take its place (claimed,
        to upload), the others are exceptions. Those of the same version are another
        writer's upload, and left to it."""
        state = self._state
        live = await state.uploads.live_uploads(self.tenant, intents)
        changed = [
            (i, live[i.change.entity_id])
            for i in intents
            if i.change.entity_id in live
            and live[i.change.entity_id].payload_hash != i.payload_hash
        ]
        documents = await asyncio.gather(*(self._documents(upload) for _, upload in changed))
        claimed: list[UploadIntent] = []
        verdicts: list[tuple[UploadIntent, Verdict]] = []
        for (intent, upload), found in zip(changed, documents, strict=True):
            if intent.change.force_reason is None:
                verdicts.append((intent, changed_after_upload(upload, found)))
            elif found is None or not document_gone_or_rejected(upload, found):
                verdicts.append((intent, reupload_refused(upload, found)))
            elif await state.uploads.replace(self.tenant, intent, state.owner):
                log.warning(
                    "%s: invoice %s uploaded again by an operator's forced replay: %s",
                    self.tenant,
                    intent.change.entity_id,
                    intent.change.force_reason,
                )
                claimed.append(intent)
        return claimed, verdicts

    async def _documents(self, upload: LiveUpload) -> list[InvoiceStatus] | None:
        """Basware's documents of the version uploaded; None when Basware cannot say now."""
        if self._company is None:
            return None
        try:
            return await self._basware.find_invoice(
                self._company, upload.invoice_number, upload.invoice_date
            )
        except (RetriesExhausted, BaswareError) as exc:
            log.warning("%s: invoice %s not looked up: %s", self.tenant, upload.bum_id, exc)
            return None

    async def _settled(self, uploads: Sequence[UploadOutcome]) -> Outcomes:
        outcomes = Outcomes()
        uncertain = []
        for upload in uploads:
            if upload.verdict is None:
                uncertain.append(upload.intent)
                continue
            outcomes.deliveries += fan_out(upload.intent.changes, upload.verdict)
            if upload.verdict.accepted:
                outcomes.settlement.uploaded.append((upload.intent, upload.bum_id))
            else:
                outcomes.settlement.abandoned.append(upload.intent)
        state = self._state
        await state.uploads.hand_off(self.tenant, uncertain, state.owner)
        return outcomes

    async def _upload(self, intent: UploadIntent, payload: InvoicePayload) -> UploadOutcome:
        def refused(verdict: Verdict) -> UploadOutcome:
            return UploadOutcome(intent=intent, verdict=verdict)

        async with self._slots:
            try:
                pdf = await self._pdfs.pdf_of(payload)
            except VismaError as exc:
                return refused(failed(str(exc), attempts=1, category="Visma"))
            except (ValueError, PyPdfError) as exc:
                message = f"attachment {payload.attachment_id} is not a usable PDF: {exc}"
                return refused(
                    Verdict(outcome=Outcome.REJECTED, reasons=reason("Attachment", message))
                )
            try:
                bum_id, attempts = await self._basware.upload_pdf(pdf, self._inbox)
            except UploadUncertain as exc:
                log.warning(
                    "%s: upload of invoice %s got no answer (%s); looked for in Basware later",
                    self.tenant,
                    intent.invoice_number,
                    exc,
                )
                return UploadOutcome(intent=intent, verdict=None)
            except RetriesExhausted as exc:
                return refused(failed(str(exc), attempts=exc.attempts))
            except BaswareRejected as exc:
                return refused(rejected_by_http(exc, attempts=1))
            except BaswareError as exc:
                return refused(failed(str(exc), attempts=1, category="Basware"))
        # SmartPDF has no requestStatus: the stored upload is Basware's acceptance; the
        # document's own progress (approval, exceptions) is followed by the webhook gateway.
        verdict = Verdict(outcome=Outcome.DELIVERED, attempts=attempts, request_id=bum_id)
        return UploadOutcome(intent=intent, verdict=verdict, bum_id=bum_id)

    async def confirm(self, intents: Sequence[UploadIntent]) -> Outcomes:
        """Uploads whose answer was lost: found in Basware, they are delivered; not found
        after `confirm_seconds`, they are sent again; else they wait another round."""
        state = self._state
        company = self._company
        if company is None:
            await state.uploads.hand_off(self.tenant, intents, state.owner)
            return Outcomes()
        now = datetime.now(UTC)

        async def confirm(intent: UploadIntent) -> UploadOutcome:
            try:
                found = await self._basware.find_invoice(
                    company, intent.invoice_number, intent.invoice_date
                )
            except (RetriesExhausted, BaswareError) as exc:
                log.warning(
                    "%s: invoice %s not looked up: %s", self.tenant, intent.invoice_number, exc
                )
                return UploadOutcome(intent=intent, verdict=None)
            if found:
                verdict = Verdict(
                    outcome=Outcome.DELIVERED,
                    request_id=found[0].invoice_id,
                    reasons=reason("Upload", "found in Basware after its upload's answer was lost"),
                )
                return UploadOutcome(intent=intent, verdict=verdict)
            started = intent.started_at or now
            if (now - started).total_seconds() < self._confirm_seconds:
                return UploadOutcome(intent=intent, verdict=None)
            payload = prepare(intent.changes, company).payload
            assert isinstance(payload, InvoicePayload)
            await state.uploads.restart(self.tenant, intent)
            return await self._upload(intent, payload)

        return await self._settled(await asyncio.gather(*(confirm(i) for i in intents)))

"""Invoice uploads of one tenant through SmartPDF (docs/basware-p2p.md §10.2, §10.8): each
invoice is claimed in PostgreSQL before its upload starts, so it reaches Basware as one
document; an upload whose PUT got no answer is looked for in Basware before it is sent again.
A later Visma version of an uploaded invoice is not uploaded: it is an exception naming
Basware's document, until a forced replay finds that document gone or rejected.

An invoice's attachment download never waits for Visma's quota: when the change's lane has
no call left, its claimed upload is parked in PostgreSQL until the window resets and the
batch goes on (docs/visma-net.md §8.3); the follow-up of any instance uploads it then. A
later version of an invoice parked so takes its place."""

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
from mlconnector.visma.ratelimit import QuotaSpent

log = logging.getLogger(__name__)


class UploadOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    intent: UploadIntent
    verdict: Verdict | None  # None: uncertain, left to the follow-up
    bum_id: str | None = None
    # Uploaded by an earlier send, or an exception (another version is in Basware): this
    # writer holds no claim to settle.
    done_before: bool = False
    # Parked until then: Visma's quota had no call left for its attachment.
    quota_until: datetime | None = None


def waiting_for_quota(spent: QuotaSpent) -> Verdict:
    why = (
        f"Visma's quota of company {spent.company_id} is spent for {spent.lane} work; the "
        f"upload waits until the window resets at {spent.resumes_at:%H:%M:%S} UTC"
    )
    return Verdict(outcome=Outcome.PARKED, attempts=0, reasons=reason("VismaQuota", why))


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
        claim_timeout_seconds: float,
    ) -> None:
        self.tenant = tenant
        self._basware = basware
        self._pdfs = pdfs
        self._state = state
        self._company = company_code
        self._inbox = inbox or ""
        self._slots = asyncio.Semaphore(concurrency)
        self._confirm_seconds = confirm_seconds
        self._claim_timeout = claim_timeout_seconds

    async def send(self, step: UploadStep) -> Outcomes:
        """Uploads the step's invoices, each claimed just before its own upload starts (so
        a writer killed in the middle holds no claims on invoices it never started)."""
        outcomes = Outcomes(deliveries=list(step.finished))
        if not step.intents:
            return outcomes
        uploads = await asyncio.gather(
            *(
                self._claimed_upload(intent, payload)
                for intent, payload in zip(step.intents, step.payloads, strict=True)
            )
        )
        outcomes.add(await self._settled([u for u in uploads if u is not None]))
        return outcomes

    async def _claimed_upload(
        self, intent: UploadIntent, payload: InvoicePayload
    ) -> UploadOutcome | None:
        """The invoice's upload once this writer claimed it; the earlier upload when there
        was one; the exception when the invoice was uploaded in another version; None when
        another writer is uploading it (its result comes from there)."""
        async with self._slots:
            claimed, done_before = await self._claim(intent)
            if claimed:
                return await self._upload(intent, payload)
            if done_before is None:
                replacing, verdicts = await self._later_versions([intent])
                if replacing:
                    return await self._upload(replacing[0], payload)
                if verdicts:
                    (_, verdict), *_ = verdicts
                    return UploadOutcome(intent=intent, verdict=verdict, done_before=True)
                return None
        verdict = Verdict(
            outcome=Outcome.DELIVERED,
            attempts=0,
            request_id=done_before,
            reasons=reason("Unchanged", "this invoice version was uploaded before"),
        )
        return UploadOutcome(intent=intent, verdict=verdict, done_before=True)

    async def _claim(self, intent: UploadIntent) -> tuple[bool, str | None]:
        """Whether this writer may upload the invoice now; else the bumId of its earlier
        upload, when there was one."""
        state = self._state
        claimed, done_before = await state.uploads.claim_new(self.tenant, [intent], state.owner)
        if claimed:
            return True, None
        return False, done_before[0][1] if done_before else None

    async def _later_versions(
        self, intents: Sequence[UploadIntent]
    ) -> tuple[list[UploadIntent], list[tuple[UploadIntent, Verdict]]]:
        """Intents not claimed because their invoice has a live upload of another version:
        the forced ones whose Basware document is gone or rejected take its place (claimed,
        to upload), the others are exceptions. One parked for Visma's quota (nothing of it
        sent) gives its place to the later version, which answers for its changes too.
        Those of the same version are another writer's upload, and left to it."""
        state = self._state
        live = await state.uploads.live_uploads(self.tenant, intents)
        claimed: list[UploadIntent] = []
        changed: list[tuple[UploadIntent, LiveUpload]] = []
        for intent in intents:
            upload = live.get(intent.change.entity_id)
            if upload is None or upload.payload_hash == intent.payload_hash:
                continue
            if upload.waiting_for_quota:
                taking = await state.uploads.take_over_waiting(
                    self.tenant, intent, state.owner, self._claim_timeout
                )
                if taking is not None:
                    claimed.append(taking)
                    continue
            changed.append((intent, upload))
        documents = await asyncio.gather(*(self._documents(upload) for _, upload in changed))
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
        waiting: list[tuple[UploadIntent, datetime]] = []
        for upload in uploads:
            if upload.verdict is None:
                uncertain.append(upload.intent)
                continue
            outcomes.deliveries += fan_out(upload.intent.changes, upload.verdict)
            if upload.quota_until is not None:
                waiting.append((upload.intent, upload.quota_until))
                continue
            if upload.done_before:
                continue
            if upload.verdict.accepted:
                outcomes.settlement.uploaded.append((upload.intent, upload.bum_id))
            else:
                outcomes.settlement.abandoned.append(upload.intent)
        state = self._state
        await state.uploads.hand_off(self.tenant, uncertain, state.owner)
        if waiting:
            await state.uploads.wait_for_quota(self.tenant, waiting, state.owner)
            log.info(
                "%s: %d invoice uploads parked for Visma's quota until %s UTC",
                self.tenant,
                len(waiting),
                f"{max(until for _, until in waiting):%H:%M:%S}",
            )
        return outcomes

    async def _upload(self, intent: UploadIntent, payload: InvoicePayload) -> UploadOutcome:
        """Fetches the PDF and uploads it; the caller holds one of the tenant's slots."""

        def refused(verdict: Verdict) -> UploadOutcome:
            return UploadOutcome(intent=intent, verdict=verdict)

        state = self._state

        async def putting() -> None:
            await state.uploads.sending(self.tenant, intent)

        try:
            pdf = await self._pdfs.pdf_of(payload, intent.change.quota_lane)
        except QuotaSpent as spent:
            return UploadOutcome(
                intent=intent, verdict=waiting_for_quota(spent), quota_until=spent.resumes_at
            )
        except VismaError as exc:
            return refused(failed(str(exc), attempts=1, category="Visma"))
        except (ValueError, PyPdfError) as exc:
            message = f"attachment {payload.attachment_id} is not a usable PDF: {exc}"
            return refused(Verdict(outcome=Outcome.REJECTED, reasons=reason("Attachment", message)))
        try:
            bum_id, attempts = await self._basware.upload_pdf(pdf, self._inbox, putting)
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
        # Known at once: a writer killed before the upload is settled leaves no doubt.
        await state.uploads.put_answered(self.tenant, intent, bum_id)
        # SmartPDF has no requestStatus: the stored upload is Basware's acceptance; the
        # document's own progress (approval, exceptions) is followed by the webhook gateway.
        verdict = Verdict(outcome=Outcome.DELIVERED, attempts=attempts, request_id=bum_id)
        return UploadOutcome(intent=intent, verdict=verdict, bum_id=bum_id)

    async def confirm(self, intents: Sequence[UploadIntent]) -> Outcomes:
        """Uploads whose writer stopped following them: it handed them off (a PUT got no
        answer, Visma's quota was spent) or it died. One parked for the quota, whose window
        has reset, is uploaded now. One whose PUT was answered is delivered. The others are looked
        for in Basware by number: found, delivered; not found and never sent, uploaded now;
        not found but possibly sent, sent again once `confirm_seconds` passed since (Basware
        may still be reading the PDF), else looked for again in a later round."""
        state = self._state
        company = self._company
        if company is None:
            await state.uploads.hand_off(self.tenant, intents, state.owner)
            return Outcomes()
        now = datetime.now(UTC)

        async def confirm(intent: UploadIntent) -> UploadOutcome:
            if intent.quota_until is not None:
                # Nothing of it was sent: no lookup, and its place in the backlog kept.
                async with self._slots:
                    return await self._upload(intent, self._payload(intent, company))
            if intent.bum_id is not None:
                why = "its upload was answered before its writer stopped"
                return self._delivered(intent, intent.bum_id, why)
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
                why = "found in Basware after its upload's answer was lost"
                return self._delivered(intent, found[0].invoice_id, why)
            sent_at = intent.sent_at
            if sent_at is not None and (now - sent_at).total_seconds() < self._confirm_seconds:
                return UploadOutcome(intent=intent, verdict=None)
            payload = self._payload(intent, company)
            await state.uploads.restart(self.tenant, intent)
            async with self._slots:
                return await self._upload(intent, payload)

        confirmed = await asyncio.gather(*(confirm(i) for i in intents))
        looked_up = [i for i in intents if i.bum_id is None and i.quota_until is None]
        await state.uploads.looked_up(self.tenant, looked_up)
        return await self._settled(confirmed)

    @staticmethod
    def _payload(intent: UploadIntent, company: str) -> InvoicePayload:
        payload = prepare(intent.changes, company).payload
        assert isinstance(payload, InvoicePayload)
        return payload

    @staticmethod
    def _delivered(intent: UploadIntent, request_id: str | None, why: str) -> UploadOutcome:
        verdict = Verdict(
            outcome=Outcome.DELIVERED, request_id=request_id, reasons=reason("Upload", why)
        )
        return UploadOutcome(intent=intent, verdict=verdict, bum_id=intent.bum_id)

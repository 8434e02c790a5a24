"""Delivering one tenant's change events to Basware: upserts followed to their requestStatus,
SmartPDF uploads, and dependents parked behind their prerequisites.

Within a batch: vendors first; then purchase orders (headers, then the lines of accepted
headers) of keys whose vendor is accepted and with nothing pending; then invoices of keys
whose orders are final. A dependent that cannot go waits, parked per key. Every POST answered
200 is recorded in PostgreSQL before its requestStatus is awaited; what is not final after
`status_wait_seconds` is left to the follow-up, so a partition never waits on Basware for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from pypdf.errors import PyPdfError

from basware_writer.accepted_store import AcceptedStore
from basware_writer.budget import RateBudget
from basware_writer.changes import RecordRef, per_record
from basware_writer.gate import BaswareGate, RetriesExhausted
from basware_writer.gating import parking_reason
from basware_writer.outcomes import (
    StatusIndex,
    Verdict,
    failed,
    record_verdict,
    rejected_by_http,
)
from basware_writer.parking import ParkingStore
from basware_writer.pending import Accepted, PendingRecord, PendingStore, Stage
from basware_writer.prepared import (
    Delivery,
    Prepared,
    codes_at,
    fan_out,
    is_invoice,
    pack,
    parked,
    prepare,
    reason,
    sent_at,
    unchanged,
)
from basware_writer.settings import WriterSettings
from basware_writer.uploads import UploadIntent, UploadStore
from mlconnector.basware.batching import (
    MATCHING_ORDER_BATCH_LIMIT,
    MATCHING_ORDER_LINE_BATCH_LIMIT,
    VENDOR_BATCH_LIMIT,
)
from mlconnector.basware.client import BaswareClient
from mlconnector.basware.errors import (
    BaswareError,
    BaswareNotFound,
    BaswareRejected,
    BaswareUnavailable,
)
from mlconnector.basware.invoice_pdf import embed_invoice, render_invoice_pdf
from mlconnector.basware.models import (
    AcceptedRequest,
    BaswareModel,
    BaswareVendor,
    MatchingOrder,
    MatchingOrderLine,
    RequestStatus,
    UploadResponse,
)
from mlconnector.connections import Connection
from mlconnector.contracts import ChangeEvent, Entity, Outcome
from mlconnector.mapping import InvoicePayload, OrderPayload, Unmappable, VendorPayload
from mlconnector.visma.client import VismaClient
from mlconnector.visma.errors import VismaError

log = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class WriterStores:
    """The writer's PostgreSQL state, shared by every tenant of a process."""

    accepted: AcceptedStore
    pending: PendingStore
    uploads: UploadStore
    parking: ParkingStore
    budget: RateBudget
    instance: str


class StageSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    api: str
    limit: int


STAGES = {
    Stage.VENDOR: StageSpec(api="vendors", limit=VENDOR_BATCH_LIMIT),
    Stage.ORDER: StageSpec(api="matchingOrders", limit=MATCHING_ORDER_BATCH_LIMIT),
    Stage.LINES: StageSpec(api="matchingOrderLines", limit=MATCHING_ORDER_LINE_BATCH_LIMIT),
}

Final = tuple[PendingRecord, Verdict]
# The payloads of a batch, by record and payload hash, so that nothing is mapped twice.
Known = dict[tuple[RecordRef, str], Prepared]


class Settlement(BaseModel):
    """What PostgreSQL must learn once results are out: final records leave the pending
    table (accepted ones are remembered), confirmed uploads are done, refused ones dropped."""

    done: list[PendingRecord] = Field(default_factory=list)
    accepted: list[Accepted] = Field(default_factory=list)
    uploaded: list[tuple[UploadIntent, str | None]] = Field(default_factory=list)
    abandoned: list[UploadIntent] = Field(default_factory=list)


class Outcomes(BaseModel):
    """Final (and parked) outcomes, and what to settle after their results are published."""

    deliveries: list[Delivery] = Field(default_factory=list)
    settlement: Settlement = Field(default_factory=Settlement)
    # Suppliers with records Basware is still processing, followed from PostgreSQL now.
    open_keys: set[str] = Field(default_factory=set)
    # Some parked key may be ready now (its vendor accepted): the releaser should run.
    release: bool = False
    # Keys this delivery parked changes in and holds until their results are published.
    held_keys: set[str] = Field(default_factory=set)

    def add(self, other: Outcomes) -> None:
        self.deliveries += other.deliveries
        self.settlement.done += other.settlement.done
        self.settlement.accepted += other.settlement.accepted
        self.settlement.uploaded += other.settlement.uploaded
        self.settlement.abandoned += other.settlement.abandoned
        self.open_keys |= other.open_keys
        self.release = self.release or other.release

    def finish(self, record: PendingRecord, verdict: Verdict) -> None:
        self.deliveries += fan_out(record.changes, verdict)
        self.settlement.done.append(record)
        if verdict.accepted:
            self.settlement.accepted.append((record.ref, record.payload_hash, verdict.request_id))


class KeyState(BaseModel):
    """What PostgreSQL knows about the records and keys of a delivery."""

    accepted: dict[tuple[str, str], str]
    vendors: set[str]
    in_flight: set[tuple[str, str, str]]
    waiting: set[str]
    parked: set[str]


class UploadUncertain(Exception):
    """The PDF may or may not have reached Basware (the PUT got no answer)."""


class UploadOutcome(BaseModel):
    intent: UploadIntent
    verdict: Verdict | None  # None: uncertain, left to the follow-up
    bum_id: str | None = None


def _pending(
    prepared: Prepared, stage: Stage, request_ids: Sequence[str], attempts: int
) -> PendingRecord:
    return PendingRecord(
        changes=prepared.changes,
        payload_hash=prepared.payload_hash,
        stage=stage,
        request_ids=tuple(request_ids),
        attempts=attempts,
    )


class TenantWriter:
    """Makes one connection's Basware tenant match the change events it is given."""

    def __init__(
        self,
        connection: Connection,
        basware: BaswareClient,
        visma: VismaClient,
        settings: WriterSettings,
        stores: WriterStores,
    ) -> None:
        self.connection = connection
        self.basware = basware
        self.visma = visma
        self.settings = settings
        self.stores = stores
        self.gate = BaswareGate(
            connection.tenant,
            self._region_name,
            stores.budget,
            settings.backoff(),
            settings.requests_in_flight,
        )
        self._uploads = asyncio.Semaphore(settings.invoice_concurrency)

    @property
    def tenant(self) -> str:
        return self.connection.tenant

    async def region(self) -> str | None:
        try:
            return await self._region_name()
        except BaswareError:
            return None

    async def _region_name(self) -> str:
        return (await self.basware.region()).value

    def _company(self) -> str | None:
        return self.connection.basware_company_code

    def _missing_company(self) -> Verdict:
        return Verdict(
            outcome=Outcome.REJECTED,
            reasons=reason(
                "Configuration",
                f"connection {self.connection.name} has no Basware company code "
                "(BASWARE_COMPANY_CODE or `connections add --basware-company-code`)",
            ),
        )

    # --- a batch (or a release of parked changes) ---

    async def deliver(
        self, changes: Sequence[ChangeEvent], *, releasing: Collection[str] = ()
    ) -> Outcomes:
        """Delivers the changes; PostgreSQL is settled as outcomes become final. Changes of a
        record Basware is still processing get no outcome here: the follow-up gives it."""
        outcomes = Outcomes()
        company = self._company()
        if company is None:
            outcomes.deliveries = fan_out(changes, self._missing_company())
            return outcomes
        prepared: list[Prepared] = []
        for group in per_record(changes):
            try:
                prepared.append(prepare(group, company))
            except Unmappable as exc:
                verdict = Verdict(outcome=Outcome.REJECTED, reasons=exc.reasons)
                outcomes.deliveries += fan_out(group, verdict)
        state = await self._key_state(prepared, releasing)
        # Records Basware is processing already are followed by whoever posted them.
        prepared = [
            p for p in prepared if (p.ref[0].value, p.ref[1], p.payload_hash) not in state.in_flight
        ]
        vendors = [p for p in prepared if isinstance(p.payload, VendorPayload)]
        outcomes.add(await self._send(Stage.VENDOR, self._skip_unchanged(vendors, state, outcomes)))
        accepted_vendors = state.vendors | {
            d.change.supplier_number
            for d in outcomes.deliveries
            if d.change.entity is Entity.SUPPLIER and d.verdict.accepted
        }
        waiting = state.waiting | outcomes.open_keys
        waits: list[tuple[Prepared, str]] = []

        def ready(candidates: list[Prepared]) -> list[Prepared]:
            going = []
            for p in candidates:
                why = parking_reason(
                    p.supplier,
                    accepted_vendors=accepted_vendors,
                    waiting_keys=waiting,
                    parked_keys=state.parked,
                )
                if why is None:
                    going.append(p)
                else:
                    waits.append((p, why))
            return self._skip_unchanged(going, state, outcomes)

        orders = [p for p in prepared if isinstance(p.payload, OrderPayload)]
        outcomes.add(await self._send(Stage.ORDER, ready(orders)))
        waiting |= outcomes.open_keys
        invoices = [p for p in prepared if is_invoice(p)]
        outcomes.add(await self._send_invoices(ready(invoices)))
        parked_now, outcomes.held_keys = await self._park(waits, changes)
        outcomes.deliveries += parked_now
        await self.settle(outcomes.settlement)
        outcomes.settlement = Settlement()
        parked_keys = state.parked | {p.supplier for p, _ in waits}
        outcomes.release = any(k in accepted_vendors and k not in waiting for k in parked_keys)
        return outcomes

    def _skip_unchanged(
        self, prepared: list[Prepared], state: KeyState, outcomes: Outcomes
    ) -> list[Prepared]:
        going = []
        for p in prepared:
            if state.accepted.get((p.ref[0].value, p.ref[1])) == p.payload_hash:
                # What Basware would receive is what it already accepted: nothing to send.
                outcomes.deliveries += fan_out(p.changes, unchanged())
            else:
                going.append(p)
        return going

    async def _key_state(
        self, prepared: Sequence[Prepared], releasing: Collection[str]
    ) -> KeyState:
        refs = [p.ref for p in prepared]
        suppliers = {p.supplier for p in prepared}
        stores, tenant = self.stores, self.tenant
        accepted = await stores.accepted.lookup(tenant, refs)
        return KeyState(
            accepted={(e.value, i): digest for (e, i), digest in accepted.items()},
            vendors=await stores.accepted.vendors(tenant, suppliers),
            in_flight=await stores.pending.in_flight(tenant, refs),
            waiting=await stores.pending.waiting_keys(tenant, suppliers),
            parked=await stores.parking.parked_keys(tenant, suppliers) - set(releasing),
        )

    async def _park(
        self, waits: Sequence[tuple[Prepared, str]], batch: Sequence[ChangeEvent]
    ) -> tuple[list[Delivery], set[str]]:
        position = {id(change): index for index, change in enumerate(batch)}
        entries = sorted(
            ((change, why) for p, why in waits for change in p.changes),
            key=lambda entry: position.get(id(entry[0]), -1),
        )
        held = await self.stores.parking.park(
            self.tenant, entries, self.stores.instance, self.settings.instance_timeout_seconds
        )
        return [Delivery(change=change, verdict=parked(why)) for change, why in entries], held

    async def let_go(self, outcomes: Outcomes) -> None:
        """The results are out (or will never be): parked keys may be released now."""
        await self.stores.parking.unclaim(self.stores.instance, self.tenant, outcomes.held_keys)

    async def settle(self, settlement: Settlement) -> None:
        stores = self.stores
        await stores.pending.settle(self.tenant, settlement.done, settlement.accepted)
        await stores.uploads.uploaded(self.tenant, settlement.uploaded)
        await stores.uploads.abandon(self.tenant, settlement.abandoned)

    # --- upserts: POST, record as pending, follow requestStatus ---

    async def _send(self, stage: Stage, prepared: Sequence[Prepared]) -> Outcomes:
        outcomes = Outcomes()
        if not prepared:
            return outcomes
        posted, refused = await self._post(stage, prepared)
        for record, verdict in refused:
            outcomes.finish(record, verdict)
        mine = await self.stores.pending.record(self.tenant, posted, self.stores.instance)
        known = {(p.ref, p.payload_hash): p for p in prepared}
        outcomes.add(await self._follow(mine, self.settings.status_wait_seconds, known))
        return outcomes

    async def _post(
        self, stage: Stage, prepared: Sequence[Prepared]
    ) -> tuple[list[PendingRecord], list[Final]]:
        """POSTs the stage's records in requests within Basware's limits, concurrently."""
        spec = STAGES[stage]
        chunks = pack([(i, sent_at(stage, p.payload)) for i, p in enumerate(prepared)], spec.limit)

        async def post(
            chunk: list[tuple[int, list[BaswareModel]]],
        ) -> tuple[list[int], list[AcceptedRequest], int, Verdict | None]:
            records = [record for _, records in chunk for record in records]
            indexes = [index for index, _ in chunk]
            try:
                requests, attempts = await self.gate.call(
                    f"POST /v1/{spec.api}", lambda: self._upsert(stage, records)
                )
            except RetriesExhausted as exc:
                return indexes, [], exc.attempts, failed(str(exc), attempts=exc.attempts)
            except BaswareRejected as exc:
                return indexes, [], 1, rejected_by_http(exc, attempts=1)
            except BaswareError as exc:
                # Credentials, scope or region refused: not the record's fault, so replayable.
                return indexes, [], 1, failed(str(exc), attempts=1, category="Basware")
            return indexes, requests, attempts, None

        request_ids: dict[int, list[str]] = {}
        attempts: dict[int, int] = {}
        refusals: dict[int, Verdict] = {}
        for indexes, requests, tries, refusal in await asyncio.gather(*(post(c) for c in chunks)):
            for index in indexes:
                attempts[index] = max(attempts.get(index, 0), tries)
                if refusal is not None:
                    refusals.setdefault(index, refusal)
                codes = set(codes_at(stage, prepared[index].payload))
                request_ids.setdefault(index, []).extend(
                    r.request_id for r in requests if codes & set(r.external_codes)
                )
        posted: list[PendingRecord] = []
        refused: list[Final] = []
        for index, p in enumerate(prepared):
            ids = list(dict.fromkeys(request_ids.get(index, [])))
            record = _pending(p, stage, ids, attempts.get(index, 1))
            if index in refusals:
                refused.append((record, refusals[index]))
            else:
                posted.append(record)
        return posted, refused

    async def _upsert(self, stage: Stage, records: Sequence[BaswareModel]) -> list[AcceptedRequest]:
        if stage is Stage.VENDOR:
            vendors = [r for r in records if isinstance(r, BaswareVendor)]
            return await self.basware.upsert_vendors(vendors)
        if stage is Stage.ORDER:
            orders = [r for r in records if isinstance(r, MatchingOrder)]
            return await self.basware.upsert_matching_orders(orders)
        lines = [r for r in records if isinstance(r, MatchingOrderLine)]
        return await self.basware.upsert_matching_order_lines(lines)

    async def _follow(
        self, records: Sequence[PendingRecord], wait: float, known: Known | None = None
    ) -> Outcomes:
        """Follows the records' requests up to `wait` seconds; an accepted header has its
        lines posted (and followed); records not final by then stay pending."""
        outcomes = Outcomes()
        if not records:
            return outcomes
        statuses = await self._statuses(
            list(dict.fromkeys(i for r in records for i in r.request_ids)), wait
        )
        index = StatusIndex(statuses.values())
        headers_accepted: list[PendingRecord] = []
        still: list[PendingRecord] = []
        for record in records:
            found = [statuses[i] for i in record.request_ids if i in statuses]
            if len(found) < len(record.request_ids):
                still.append(record)
                continue
            codes = codes_at(record.stage, self._prepared(record, known).payload)
            verdict = record_verdict(codes, found, attempts=record.attempts, index=index)
            if record.stage is Stage.ORDER and verdict.accepted:
                headers_accepted.append(record)
            else:
                outcomes.finish(record, verdict)
        if headers_accepted:
            # Lines only after their header is accepted: Basware refuses orphan lines.
            outcomes.add(await self._send_lines(headers_accepted, wait, known))
        await self.stores.pending.hand_off(self.tenant, still, self.stores.instance)
        outcomes.open_keys |= {r.change.supplier_number for r in still}
        return outcomes

    async def _send_lines(
        self, headers: Sequence[PendingRecord], wait: float, known: Known | None
    ) -> Outcomes:
        outcomes = Outcomes()
        with_lines: list[Prepared] = []
        for header in headers:
            p = self._prepared(header, known)
            assert isinstance(p.payload, OrderPayload)
            if p.payload.lines:
                with_lines.append(p)
            else:
                outcomes.finish(
                    header, Verdict(outcome=Outcome.DELIVERED, attempts=header.attempts)
                )
        posted, refused = await self._post(Stage.LINES, with_lines)
        for record, verdict in refused:
            outcomes.finish(record, verdict)
        await self.stores.pending.advance(self.tenant, posted)
        outcomes.add(await self._follow(posted, wait, known))
        return outcomes

    def _prepared(self, record: PendingRecord, known: Known | None) -> Prepared:
        """The record's payload: at hand within a batch, mapped again in the follow-up."""
        found = (known or {}).get((record.ref, record.payload_hash))
        return found or prepare(record.changes, self._company() or "")

    async def _statuses(self, request_ids: Sequence[str], wait: float) -> dict[str, RequestStatus]:
        """The final requestStatus of each request that became final within `wait` seconds
        (one look when `wait` is 0)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait

        async def final(request_id: str) -> RequestStatus | None:
            interval = FIRST_POLL_SECONDS
            if wait > 0:
                # Basware never answers within the POST's round trip: look a moment later.
                await asyncio.sleep(min(interval, wait))
            while True:
                status = await self._request_status(request_id)
                if status is not None and status.is_final:
                    return status
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await asyncio.sleep(min(interval, remaining))
                interval = min(interval * 2, MAX_POLL_SECONDS)

        found = await asyncio.gather(*(final(i) for i in request_ids))
        return {i: s for i, s in zip(request_ids, found, strict=True) if s is not None}

    async def _request_status(self, request_id: str) -> RequestStatus | None:
        try:
            status, _ = await self.gate.call(
                "GET /v1/requestStatus", lambda: self.basware.get_request_status(request_id)
            )
        except BaswareNotFound:
            return None  # not visible yet
        except (RetriesExhausted, BaswareError) as exc:
            log.warning("%s: requestStatus %s not read now: %s", self.tenant, request_id, exc)
            return None
        return status

    # --- the follow-up: records pending from earlier (or from a writer that died) ---

    async def resume(self, records: Sequence[PendingRecord]) -> Outcomes:
        """One look at each record's requests; the caller publishes the outcomes, then
        settles. Records still open past `request_status_timeout_seconds` fail."""
        outcomes = await self._follow(records, 0)
        timeout = self.settings.request_status_timeout_seconds
        now = datetime.now(UTC)
        finals = {(r.ref, r.payload_hash) for r in outcomes.settlement.done}
        for record in records:
            if (record.ref, record.payload_hash) in finals or record.posted_at is None:
                continue
            if (now - record.posted_at).total_seconds() > timeout:
                message = (
                    f"Basware request(s) {', '.join(record.request_ids)} still in progress "
                    f"after {timeout:.0f} s"
                )
                outcomes.finish(
                    record, failed(message, attempts=record.attempts, category="RequestStatus")
                )
        return outcomes

    # --- invoices: SmartPDF upload, claimed before it starts ---

    async def _send_invoices(self, prepared: Sequence[Prepared]) -> Outcomes:
        outcomes = Outcomes()
        if not prepared:
            return outcomes
        if self.connection.basware_receiving_email is None:
            message = (
                f"connection {self.connection.name} has no SmartPDF receiving address "
                "(BASWARE_RECEIVING_EMAIL)"
            )
            verdict = Verdict(outcome=Outcome.REJECTED, reasons=reason("Configuration", message))
            for p in prepared:
                outcomes.deliveries += fan_out(p.changes, verdict)
            return outcomes
        payloads = {
            (p.change.entity_id, p.payload_hash): p.payload
            for p in prepared
            if isinstance(p.payload, InvoicePayload)
        }
        intents = [
            UploadIntent(
                changes=p.changes,
                payload_hash=p.payload_hash,
                invoice_number=p.payload.invoice.invoice_number,
                invoice_date=p.payload.invoice.invoice_date,
            )
            for p in prepared
            if isinstance(p.payload, InvoicePayload)
        ]
        claimed, done_before = await self.stores.uploads.claim_new(
            self.tenant, intents, self.stores.instance
        )
        for intent, bum_id in done_before:
            verdict = Verdict(
                outcome=Outcome.DELIVERED,
                attempts=0,
                request_id=bum_id,
                reasons=reason("Unchanged", "this invoice version was uploaded before"),
            )
            outcomes.deliveries += fan_out(intent.changes, verdict)
        uploads = await asyncio.gather(
            *(
                self._upload(intent, payloads[(intent.change.entity_id, intent.payload_hash)])
                for intent in claimed
            )
        )
        outcomes.add(await self._uploads_settled(uploads))
        return outcomes

    async def _uploads_settled(self, uploads: Sequence[UploadOutcome]) -> Outcomes:
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
        await self.stores.uploads.hand_off(self.tenant, uncertain, self.stores.instance)
        return outcomes

    async def _invoice_pdf(self, payload: InvoicePayload) -> bytes:
        if payload.attachment_id is None:
            return render_invoice_pdf(payload.invoice)
        original = await self.visma.get_attachment(payload.attachment_id)
        return embed_invoice(original, payload.invoice)

    async def _put(self, upload: UploadResponse, pdf: bytes) -> None:
        try:
            await self.basware.put_invoice_pdf(upload, pdf)
        except BaswareUnavailable as exc:
            if exc.status is None:
                raise UploadUncertain(str(exc)) from exc
            raise

    async def _upload(self, intent: UploadIntent, payload: InvoicePayload) -> UploadOutcome:
        inbox = self.connection.basware_receiving_email or ""

        def refused(verdict: Verdict) -> UploadOutcome:
            return UploadOutcome(intent=intent, verdict=verdict)

        async with self._uploads:
            try:
                pdf = await self._invoice_pdf(payload)
            except VismaError as exc:
                return refused(failed(str(exc), attempts=1, category="Visma"))
            except (ValueError, PyPdfError) as exc:
                message = f"attachment {payload.attachment_id} is not a usable PDF: {exc}"
                verdict = Verdict(outcome=Outcome.REJECTED, reasons=reason("Attachment", message))
                return refused(verdict)
            try:
                upload, attempts = await self.gate.call(
                    "POST /v2/smartpdf/invoiceUpload",
                    lambda: self.basware.request_invoice_upload(
                        receiving_email=inbox, notification_email=inbox
                    ),
                )
                # S3's answers are not Basware's API: the PUT takes no budget, only a slot.
                _, put_attempts = await self.gate.call(
                    "PUT invoice PDF", lambda: self._put(upload, pdf), budgeted=False
                )
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
        verdict = Verdict(
            outcome=Outcome.DELIVERED,
            attempts=attempts + put_attempts - 1,
            request_id=upload.bum_id,
        )
        return UploadOutcome(intent=intent, verdict=verdict, bum_id=upload.bum_id)

    async def confirm_uploads(self, intents: Sequence[UploadIntent]) -> Outcomes:
        """Uploads whose answer was lost: found in Basware, they are delivered; not found
        after `upload_confirm_seconds`, they are sent again; else they wait another round."""
        company = self._company()
        if company is None:
            await self.stores.uploads.hand_off(self.tenant, intents, self.stores.instance)
            return Outcomes()
        now = datetime.now(UTC)

        async def confirm(intent: UploadIntent) -> UploadOutcome:
            try:
                found, _ = await self.gate.call(
                    "GET /v1/accountingDocuments/status",
                    lambda: self.basware.get_invoice_status(
                        company, intent.invoice_number, intent.invoice_date
                    ),
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
            if (now - started).total_seconds() < self.settings.upload_confirm_seconds:
                return UploadOutcome(intent=intent, verdict=None)
            payload = prepare(intent.changes, company).payload
            assert isinstance(payload, InvoicePayload)
            await self.stores.uploads.restart(self.tenant, intent)
            return await self._upload(intent, payload)

        return await self._uploads_settled(await asyncio.gather(*(confirm(i) for i in intents)))


WriterFor = Callable[[str], Awaitable[TenantWriter | None]]

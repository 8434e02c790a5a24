"""Carries out the planner's steps for one connection, through the ports (ports.py): master
data (route by route), then the vendors whose payment terms Basware has, then the admitted
order headers (their lines once accepted, upserts.py), then the
admitted invoices (invoice_uploads.py); what must wait parks. PostgreSQL is settled as
outcomes become final; records Basware is still processing get no outcome here: the
follow-up gives it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from basware_writer.domain import (
    Delivery,
    Outcomes,
    PendingRecord,
    Settlement,
    Stage,
    UploadIntent,
    ref_of,
)
from basware_writer.invoice_uploads import InvoiceUploads
from basware_writer.planner import (
    Destination,
    admit,
    admit_vendors,
    parked,
    parked_in_kafka_order,
    plan,
    refuse_inactive,
    release_due,
    upload_step,
    upsert_step,
)
from basware_writer.ports import BaswareCalls, InvoicePdfs, WriterState
from basware_writer.settings import WriterSettings
from basware_writer.upserts import Upserts
from basware_writer.verdicts import failed
from mlconnector.contracts import REFERENCE_ENTITIES, ChangeEvent, Entity
from mlconnector.mapping import codes_named


class TenantExecutor:
    """Makes one connection's Basware tenant match the change events it is given."""

    def __init__(
        self,
        tenant: str,
        destination: Destination,
        basware: BaswareCalls,
        pdfs: InvoicePdfs,
        state: WriterState,
        settings: WriterSettings,
    ) -> None:
        self.tenant = tenant
        self.destination = destination
        self._basware = basware
        self._state = state
        self._settings = settings
        self._upserts = Upserts(
            tenant,
            basware,
            state,
            destination.company_code,
            settings.status_wait_seconds,
            layout=destination.layout,
        )
        self._uploads = InvoiceUploads(
            tenant,
            basware,
            pdfs,
            state,
            company_code=destination.company_code,
            inbox=destination.receiving_email,
            concurrency=settings.invoice_concurrency,
            confirm_seconds=settings.upload_confirm_seconds,
            claim_timeout_seconds=settings.instance_timeout_seconds,
        )

    async def region(self) -> str | None:
        return await self._basware.region()

    async def deliver(
        self, changes: Sequence[ChangeEvent], *, releasing: Collection[str] = ()
    ) -> Outcomes:
        """Delivers a batch (or a release of parked changes: `releasing` names its keys)."""
        state = self._state
        layout = self.destination.layout
        refs = list(dict.fromkeys(ref_of(c) for c in changes))
        # The codes the batch names are looked up with its records: which Basware has.
        codes = {code for c in changes for code in codes_named(c, layout)} - set(refs)
        suppliers = {c.supplier_number for c in changes}
        known = await state.known_state(self.tenant, [*refs, *sorted(codes)], suppliers, releasing)
        planned = plan(changes, known, self.destination)
        outcomes = Outcomes(deliveries=list(planned.finished))
        for step in planned.master:
            outcomes.add(await self._upserts.send(step))
        master = [a for a in outcomes.settlement.accepted if a.ref[0] in REFERENCE_ENTITIES]
        master_accepted = {a.ref for a in master}
        accepted_codes = known.codes_accepted() | master_accepted
        # What this batch accepted supersedes what PostgreSQL knew of a code.
        inactive_codes = (known.inactive - master_accepted) | {
            a.ref for a in master if not a.active
        }
        vendors, vendor_waits = admit_vendors(planned.vendors, accepted_codes, self.destination)
        outcomes.add(await self._upserts.send(vendors))
        await self._settle_so_far(outcomes)
        accepted_vendors = known.vendors | {
            d.change.supplier_number
            for d in outcomes.deliveries
            if d.change.entity is Entity.SUPPLIER and d.verdict.accepted
        }
        waiting = set(known.waiting) | outcomes.open_keys
        orders = admit(
            planned.orders,
            known,
            accepted_vendors=accepted_vendors,
            waiting_keys=waiting,
            accepted_codes=accepted_codes,
            destination=self.destination,
        )
        outcomes.deliveries += orders.finished
        outcomes.add(await self._upserts.send(upsert_step(Stage.ORDER, orders.going)))
        await self._settle_so_far(outcomes)
        waiting |= outcomes.open_keys
        invoices = admit(
            planned.invoices,
            known,
            accepted_vendors=accepted_vendors,
            waiting_keys=waiting,
            accepted_codes=accepted_codes,
            destination=self.destination,
        )
        uploading, refused = refuse_inactive(invoices.going, inactive_codes, self.destination)
        outcomes.deliveries += [*invoices.finished, *refused]
        outcomes.add(await self._uploads.send(upload_step(uploading, self.destination)))
        waits = [*vendor_waits, *orders.parked, *invoices.parked]
        entries = parked_in_kafka_order(waits, changes)
        outcomes.held_keys = await state.parked.park(
            self.tenant, entries, state.owner, self._settings.instance_timeout_seconds
        )
        outcomes.deliveries += [Delivery(change=c, verdict=parked(why)) for c, why in entries]
        await self.settle(outcomes.settlement)
        outcomes.settlement = Settlement()
        # Codes accepted now may be what keys parked earlier (of any supplier) wait for.
        outcomes.release = bool(master_accepted - known.codes_accepted()) or release_due(
            known.parked | {p.supplier for p, _ in waits},
            accepted_vendors=accepted_vendors,
            waiting_keys=waiting,
        )
        return outcomes

    async def resume(self, records: Sequence[PendingRecord]) -> Outcomes:
        """Records pending from earlier (or from a writer that died): one look at each
        record's requests; the caller publishes the outcomes, then settles. Records still
        open past `request_status_timeout_seconds` fail."""
        outcomes = await self._upserts.follow(records, 0)
        timeout = self._settings.request_status_timeout_seconds
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

    async def confirm_uploads(self, intents: Sequence[UploadIntent]) -> Outcomes:
        """Uploads whose answer was lost (invoice_uploads.py); the caller settles."""
        return await self._uploads.confirm(intents)

    async def _settle_so_far(self, outcomes: Outcomes) -> None:
        """Within a batch (its results go out before its offsets are committed), what
        Basware accepted is stored as soon as it is known, not after the later stages: a
        writer killed meanwhile leaves nothing to be posted again."""
        await self.settle(outcomes.settlement)
        outcomes.settlement = Settlement()

    async def settle(self, settlement: Settlement) -> None:
        state, tenant = self._state, self.tenant
        await state.pending.settle(tenant, settlement.done, settlement.accepted)
        await state.uploads.uploaded(tenant, settlement.uploaded)
        await state.uploads.abandon(tenant, settlement.abandoned)

    async def let_go(self, outcomes: Outcomes) -> None:
        """The results are out (or will never be): parked keys may be released now."""
        await self._state.parked.unclaim(self._state.owner, self.tenant, outcomes.held_keys)

"""The executor through its ports, with stand-ins for Basware, Visma and PostgreSQL: the
order of the calls it makes and what it does with Basware's answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from writer_changes import TENANT, TO, invoice, order, supplier

from basware_writer.domain import (
    Accepted,
    KnownState,
    LiveUpload,
    PendingRecord,
    RecordRef,
    Stage,
    UploadIntent,
)
from basware_writer.executor import TenantExecutor
from basware_writer.planner import UpsertBatch
from basware_writer.settings import WriterSettings
from mlconnector.basware.models import AcceptedRequest, InvoiceStatus, RequestStatus
from mlconnector.contracts import ChangeEvent, Outcome
from mlconnector.mapping import InvoicePayload
from mlconnector.visma.ratelimit import QuotaLane, QuotaSpent


class Basware:
    """Takes every upsert; requestStatus answers `item_status` for each code sent."""

    def __init__(self, item_status: str = "Success") -> None:
        self.calls: list[str] = []
        self.item_status = item_status
        self._codes: dict[str, list[str]] = {}

    async def region(self) -> str | None:
        return "EU"

    async def upsert(self, stage: Stage, batch: UpsertBatch) -> tuple[list[AcceptedRequest], int]:
        request_id = f"req-{len(self._codes)}"
        codes = [str(r.payload()["externalCode"]) for r in batch.records]
        self._codes[request_id] = codes
        self.calls.append(f"POST {stage.value} {','.join(codes)}")
        return [
            AcceptedRequest(request_id=request_id, entity_type=stage.value, external_codes=codes)
        ], 1

    async def request_status(self, request_id: str) -> RequestStatus | None:
        items = [{"externalCode": c, "status": self.item_status} for c in self._codes[request_id]]
        state = "Success" if self.item_status == "Success" else "Error"
        return RequestStatus.model_validate(
            {
                "requestId": request_id,
                "requestStatus": state,
                "systems": [{"system": "P2P", "systemStatus": state, "items": items}],
            }
        )

    async def upload_pdf(
        self, pdf: bytes, inbox: str, putting: Callable[[], Awaitable[None]]
    ) -> tuple[str, int]:
        await putting()
        self.calls.append(f"UPLOAD {pdf.decode()} to {inbox}")
        return "bum-1", 1

    async def find_invoice(
        self, company_code: str, invoice_number: str, invoice_date: date
    ) -> list[InvoiceStatus]:
        return []


class Pdfs:
    def __init__(self, spent_until: datetime | None = None) -> None:
        # Visma's quota has no call left for bulk work until then.
        self.spent_until = spent_until
        self.lanes: list[QuotaLane] = []

    async def pdf_of(self, payload: InvoicePayload, lane: QuotaLane) -> bytes:
        self.lanes.append(lane)
        if self.spent_until is not None and lane is QuotaLane.BULK:
            raise QuotaSpent("1000001", lane, self.spent_until)
        return payload.invoice.invoice_number.encode()


class Pending:
    def __init__(self) -> None:
        self.recorded: list[PendingRecord] = []
        self.settled: list[Accepted] = []

    async def record(
        self, tenant: str, records: Sequence[PendingRecord], owner: str
    ) -> list[PendingRecord]:
        self.recorded += records
        return list(records)

    async def advance(self, tenant: str, records: Sequence[PendingRecord]) -> None:
        return None

    async def hand_off(self, tenant: str, records: Sequence[PendingRecord], owner: str) -> None:
        assert not records, "nothing is left to the follow-up here"

    async def settle(
        self, tenant: str, done: Sequence[PendingRecord], accepted: Sequence[Accepted]
    ) -> None:
        self.settled += accepted


class Uploads:
    def __init__(self) -> None:
        self.bum_ids: list[str | None] = []
        self.abandoned: list[UploadIntent] = []
        self.waiting: list[tuple[UploadIntent, datetime]] = []

    async def claim_new(
        self, tenant: str, intents: Sequence[UploadIntent], owner: str
    ) -> tuple[list[UploadIntent], list[tuple[UploadIntent, str | None]]]:
        return list(intents), []

    async def live_uploads(
        self, tenant: str, intents: Sequence[UploadIntent]
    ) -> dict[str, LiveUpload]:
        return {}

    async def replace(self, tenant: str, intent: UploadIntent, owner: str) -> bool:
        return True

    async def uploaded(self, tenant: str, done: Sequence[tuple[UploadIntent, str | None]]) -> None:
        self.bum_ids += [bum_id for _, bum_id in done]

    async def abandon(self, tenant: str, intents: Sequence[UploadIntent]) -> None:
        self.abandoned += intents

    async def take_over_waiting(
        self, tenant: str, intent: UploadIntent, owner: str, timeout_seconds: float
    ) -> UploadIntent | None:
        return None

    async def wait_for_quota(
        self, tenant: str, intents: Sequence[tuple[UploadIntent, datetime]], owner: str
    ) -> None:
        self.waiting += intents

    async def hand_off(self, tenant: str, intents: Sequence[UploadIntent], owner: str) -> None:
        return None

    async def restart(self, tenant: str, intent: UploadIntent) -> None:
        return None

    async def sending(self, tenant: str, intent: UploadIntent) -> None:
        return None

    async def put_answered(self, tenant: str, intent: UploadIntent, bum_id: str) -> None:
        return None

    async def looked_up(self, tenant: str, intents: Sequence[UploadIntent]) -> None:
        return None


class Parked:
    def __init__(self) -> None:
        self.parked: list[tuple[ChangeEvent, str]] = []

    async def park(
        self, tenant: str, parked: Sequence[tuple[ChangeEvent, str]], owner: str, timeout: float
    ) -> set[str]:
        self.parked += parked
        return {change.supplier_number for change, _ in parked}

    async def unclaim(self, owner: str, tenant: str, suppliers: Collection[str]) -> None:
        return None


class State:
    owner = "writer-1"

    def __init__(self, known: KnownState | None = None) -> None:
        self.known = known or KnownState()
        self.pending = Pending()
        self.uploads = Uploads()
        self.parked = Parked()

    async def known_state(
        self,
        tenant: str,
        refs: Sequence[RecordRef],
        suppliers: Collection[str],
        releasing: Collection[str],
    ) -> KnownState:
        return self.known


def executor(
    basware: Basware, state: State, pdfs: Pdfs | None = None, **settings: Any
) -> TenantExecutor:
    return TenantExecutor(TENANT, TO, basware, pdfs or Pdfs(), state, WriterSettings(**settings))


async def test_vendor_then_header_then_lines_then_invoice_each_after_the_one_before() -> None:
    basware, state = Basware(), State()
    changes = [
        invoice("INV1", "S1", supplierReference="F-1"),
        order("PO1", "S1"),
        supplier("S1"),
    ]

    outcomes = await executor(basware, state).deliver(changes)

    assert basware.calls == [
        "POST vendor S1",
        "POST order RegularOrder-PO1",
        "POST lines RegularOrder-PO1-1,RegularOrder-PO1-2",
        "UPLOAD F-1 to in@acme.example",
    ]
    assert {d.change.entity_id: d.verdict.outcome for d in outcomes.deliveries} == {
        "S1": Outcome.DELIVERED,
        "PO1": Outcome.DELIVERED,
        "Invoice/INV1": Outcome.DELIVERED,
    }
    # Recorded as pending before their requestStatus was read, remembered once accepted.
    assert [r.stage for r in state.pending.recorded] == [Stage.VENDOR, Stage.ORDER]
    assert len(state.pending.settled) == 2
    assert state.uploads.bum_ids == ["bum-1"]
    assert state.parked.parked == []


async def test_a_refused_vendor_parks_its_dependents_and_nothing_of_them_is_sent() -> None:
    basware, state = Basware(item_status="Error"), State()
    changes = [supplier("S1"), order("PO1", "S1"), invoice("INV1", "S1")]

    outcomes = await executor(basware, state).deliver(changes)

    assert basware.calls == ["POST vendor S1"]
    verdicts = {d.change.entity_id: d.verdict for d in outcomes.deliveries}
    assert verdicts["S1"].outcome is Outcome.REJECTED
    assert verdicts["PO1"].outcome is Outcome.PARKED
    assert verdicts["Invoice/INV1"].outcome is Outcome.PARKED
    assert [c.entity_id for c, _ in state.parked.parked] == ["PO1", "Invoice/INV1"]
    assert outcomes.held_keys == {"S1"}
    # The vendor is not accepted: no release is due.
    assert outcomes.release is False


async def test_a_backfill_invoice_finding_the_quota_spent_is_parked_and_a_live_one_goes() -> None:
    basware, state = Basware(), State(KnownState(vendors=frozenset({"S1"})))
    resets = datetime.now(UTC) + timedelta(minutes=20)
    pdfs = Pdfs(spent_until=resets)
    backfill = invoice("INV1", "S1", supplierReference="F-1").model_copy(
        update={"quota_lane": QuotaLane.BULK}
    )
    live = invoice("INV2", "S1", supplierReference="F-2")

    outcomes = await executor(basware, state, pdfs).deliver([backfill, live])

    # The live invoice is uploaded; the backfill's waits for the window, nothing of it sent.
    assert basware.calls == ["UPLOAD F-2 to in@acme.example"]
    verdicts = {d.change.entity_id: d.verdict for d in outcomes.deliveries}
    assert verdicts["Invoice/INV2"].outcome is Outcome.DELIVERED
    parked = verdicts["Invoice/INV1"]
    assert parked.outcome is Outcome.PARKED
    assert parked.reasons[0].category == "VismaQuota"
    assert [(i.change.entity_id, until) for i, until in state.uploads.waiting] == [
        ("Invoice/INV1", resets)
    ]
    # Its claim is kept (parked, for any writer to take up), neither abandoned nor settled.
    assert state.uploads.abandoned == []
    assert state.uploads.bum_ids == ["bum-1"]
    # It parks no key: later changes of the supplier are not held behind it.
    assert state.parked.parked == []
    assert sorted(pdfs.lanes) == [QuotaLane.BULK, QuotaLane.LIVE]

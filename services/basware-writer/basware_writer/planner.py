"""What to do with a batch of change events: pure rules, no I/O (docs/basware-p2p.md §10.9).

`plan(changes, known, destination)` keeps the latest version of each record, maps it, and
decides what needs no call at all (rejected before sending, unchanged, already in flight,
not mapped by the connection's coding layout); it batches master data per Basware route and
the vendors to Basware's limits. A vendor, order or invoice goes only once Basware has
accepted every code it names (`codes_named`); until then it parks on its key, as a dependent
waits for its vendor. Orders and invoices depend on answers the plan
cannot know yet (a vendor posted in this very batch may be refused), so the plan hands them
on as candidates and `admit` decides, by the same rules, once those answers are in: a
dependent goes when its vendor is accepted and nothing of its key waits or is parked; else it
parks, queued behind its key. `upsert_step` and `lines_step` batch a stage's records.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from basware_writer.domain import (
    Delivery,
    KnownState,
    PreparedRecord,
    RecordRef,
    Stage,
    UploadIntent,
    Verdict,
    fan_out,
    reason,
    ref_of,
)
from mlconnector.basware.batching import (
    MASTER_DATA_BATCH_LIMIT,
    MATCHING_ORDER_BATCH_LIMIT,
    MATCHING_ORDER_LINE_BATCH_LIMIT,
    VENDOR_BATCH_LIMIT,
)
from mlconnector.basware.models import BaswareModel, GenericListItem
from mlconnector.contracts import REFERENCE_ENTITIES, ChangeEvent, Entity, Outcome
from mlconnector.mapping import (
    DEFAULT_LAYOUT,
    CodeRef,
    CodingLayout,
    InvoicePayload,
    MasterDataPayload,
    MasterDataRoute,
    NotSent,
    OrderPayload,
    Payload,
    SegmentTarget,
    Unmappable,
    VendorPayload,
    codes_named,
    map_change,
    payload_hash,
)

T = TypeVar("T")

# Records per POST of each stage (docs/basware-p2p.md §5.2); the client also keeps each
# request within Basware's byte limit.
# Master data goes first, in this order: vendors name payment terms; order and invoice lines
# name tax codes, accounts, cost centers and projects.
MASTER_STAGES: dict[MasterDataRoute, Stage] = {
    MasterDataRoute.PAYMENT_TERMS: Stage.PAYMENT_TERM,
    MasterDataRoute.TAX_CODES: Stage.TAX_CODE,
    MasterDataRoute.ACCOUNTS: Stage.ACCOUNT,
    MasterDataRoute.COST_CENTERS: Stage.COST_CENTER,
    MasterDataRoute.PROJECTS: Stage.PROJECT,
    MasterDataRoute.LISTS: Stage.LIST,
}
STAGE_OF_MASTER = frozenset(MASTER_STAGES.values())
STAGE_LIMITS = {
    **dict.fromkeys(MASTER_STAGES.values(), MASTER_DATA_BATCH_LIMIT),
    Stage.VENDOR: VENDOR_BATCH_LIMIT,
    Stage.ORDER: MATCHING_ORDER_BATCH_LIMIT,
    Stage.LINES: MATCHING_ORDER_LINE_BATCH_LIMIT,
}


class Destination(BaseModel):
    """What a connection says about where its records go in Basware."""

    model_config = ConfigDict(frozen=True)

    connection: str
    company_code: str | None
    receiving_email: str | None
    layout: CodingLayout = DEFAULT_LAYOUT
    # The reference data the connection syncs: only its codes are waited for (a customer
    # that keeps, say, accounts in Basware by hand has nothing to wait for).
    synced: frozenset[Entity] = REFERENCE_ENTITIES


class UpsertBatch(BaseModel):
    """One POST: Basware records of one stage within its limits, and which of the step's
    records (by index) they belong to (an order's many lines may span several POSTs)."""

    model_config = ConfigDict(frozen=True)

    members: tuple[int, ...]
    records: tuple[BaswareModel, ...]


class UpsertStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage
    records: tuple[PreparedRecord, ...] = ()
    batches: tuple[UpsertBatch, ...] = ()


class Plan(BaseModel):
    """A batch's first step (its vendors), what is final without a call, and the dependents
    that `admit` lets go once the vendors are answered."""

    model_config = ConfigDict(frozen=True)

    finished: tuple[Delivery, ...] = ()
    # One step per master-data route, in MASTER_STAGES order; sent before anything else.
    master: tuple[UpsertStep, ...] = ()
    vendors: UpsertStep = UpsertStep(stage=Stage.VENDOR)
    orders: tuple[PreparedRecord, ...] = ()
    invoices: tuple[PreparedRecord, ...] = ()


class Admission(BaseModel):
    """Dependents that go now, those that park (with why), and those Basware has already."""

    model_config = ConfigDict(frozen=True)

    going: tuple[PreparedRecord, ...] = ()
    parked: tuple[tuple[PreparedRecord, str], ...] = ()
    finished: tuple[Delivery, ...] = ()


class UploadStep(BaseModel):
    """Invoices to upload (each claimed before it starts), or refused for the connection."""

    model_config = ConfigDict(frozen=True)

    intents: tuple[UploadIntent, ...] = ()
    payloads: tuple[InvoicePayload, ...] = ()
    finished: tuple[Delivery, ...] = ()


# --- coalescing and mapping ---


def per_record(changes: Sequence[ChangeEvent]) -> list[tuple[ChangeEvent, ...]]:
    """The changes of each record in Kafka order, records ordered by their last change.

    Only a record's last change is sent; the earlier ones are superseded by it and share
    its outcome.
    """
    groups: dict[RecordRef, list[ChangeEvent]] = {}
    for change in changes:
        group = groups.pop(ref_of(change), [])
        group.append(change)
        groups[ref_of(change)] = group
    return [tuple(group) for group in groups.values()]


def prepare(
    changes: Sequence[ChangeEvent], company_code: str, layout: CodingLayout = DEFAULT_LAYOUT
) -> PreparedRecord:
    """Raises Unmappable when the last change cannot become a valid Basware payload, NotSent
    when the layout gives it none."""
    payload = map_change(changes[-1], company_code, layout)
    return PreparedRecord(
        changes=tuple(changes), payload=payload, payload_hash=payload_hash(payload)
    )


# --- verdicts that need no call ---


def unchanged() -> Verdict:
    return Verdict(
        outcome=Outcome.DELIVERED,
        attempts=0,
        reasons=reason("Unchanged", "Basware already has this content; not re-sent"),
    )


def not_sent(why: str) -> Verdict:
    return Verdict(outcome=Outcome.DELIVERED, attempts=0, reasons=reason("NotMapped", why))


def parked(why: str) -> Verdict:
    return Verdict(outcome=Outcome.PARKED, attempts=0, reasons=reason("Dependency", why))


def misconfigured(message: str) -> Verdict:
    return Verdict(outcome=Outcome.REJECTED, reasons=reason("Configuration", message))


CODE_NAMES = {
    Entity.CREDIT_TERM: "payment term",
    Entity.VAT_CATEGORY: "tax code",
    Entity.ACCOUNT: "account",
}


def _code_name(ref: CodeRef) -> str:
    entity, code = ref
    if entity is Entity.DIMENSION_VALUE:
        target, _, value = code.partition(":")
        return f"{SegmentTarget(target).label} {value}"
    return f"{CODE_NAMES[entity]} {code}"


def missing_codes_reason(missing: Collection[CodeRef]) -> str | None:
    """Which codes Basware has not accepted yet, named as Basware knows them."""
    if not missing:
        return None
    named = ", ".join(_code_name(ref) for ref in sorted(missing))
    return f"Basware has not accepted {named} yet; sent once it has"


def parking_reason(
    supplier: str,
    *,
    accepted_vendors: Collection[str],
    waiting_keys: Collection[str],
    parked_keys: Collection[str],
    missing_codes: Collection[CodeRef] = (),
) -> str | None:
    """Why a dependent of `supplier` cannot be sent now; None when it can.

    Per key (tenant:supplier), changes apply in Kafka order: a dependent waits while earlier
    changes of its key are parked (it queues behind them), while its vendor is not accepted,
    while a code it names is not accepted, and while an earlier request of its key is still
    being processed.
    """
    if supplier in parked_keys:
        return f"earlier changes of supplier {supplier} wait; this one queues behind them"
    if supplier not in accepted_vendors:
        return f"vendor {supplier} is not accepted by Basware yet; sent once it is"
    if why := missing_codes_reason(missing_codes):
        return why
    if supplier in waiting_keys:
        return (
            f"Basware is still processing an earlier request of supplier {supplier}; "
            "sent once it is final"
        )
    return None


def _skip_unchanged(
    records: Sequence[PreparedRecord], known: KnownState
) -> tuple[list[PreparedRecord], list[Delivery]]:
    going: list[PreparedRecord] = []
    finished: list[Delivery] = []
    for record in records:
        resend = any(change.resend for change in record.changes)
        if known.accepted.get(record.ref) == record.payload_hash and not resend:
            # What Basware would receive is what it already accepted: nothing to send.
            finished += fan_out(record.changes, unchanged())
        else:
            going.append(record)
    return going, finished


# --- the plan ---


def plan(changes: Sequence[ChangeEvent], known: KnownState, destination: Destination) -> Plan:
    """The latest version of each record, mapped; vendors batched, dependents handed on."""
    if destination.company_code is None:
        verdict = misconfigured(
            f"connection {destination.connection} has no Basware company code "
            "(BASWARE_COMPANY_CODE or `connections add --basware-company-code`)"
        )
        return Plan(finished=tuple(fan_out(list(changes), verdict)))
    finished: list[Delivery] = []
    prepared: list[PreparedRecord] = []
    for group in per_record(changes):
        try:
            record = prepare(group, destination.company_code, destination.layout)
        except NotSent as exc:
            finished += fan_out(group, not_sent(str(exc)))
            continue
        except Unmappable as exc:
            verdict = Verdict(outcome=Outcome.REJECTED, reasons=exc.reasons)
            finished += fan_out(group, verdict)
            continue
        # A record Basware is processing already is followed by whoever posted it.
        if (record.ref, record.payload_hash) not in known.in_flight:
            prepared.append(record)
    master, unchanged_master = _skip_unchanged(
        [p for p in prepared if isinstance(p.payload, MasterDataPayload)], known
    )
    vendors, unchanged_vendors = _skip_unchanged(
        [p for p in prepared if isinstance(p.payload, VendorPayload)], known
    )
    return Plan(
        finished=(*finished, *unchanged_master, *unchanged_vendors),
        master=_master_steps(master),
        vendors=upsert_step(Stage.VENDOR, vendors),
        orders=tuple(p for p in prepared if isinstance(p.payload, OrderPayload)),
        invoices=tuple(p for p in prepared if isinstance(p.payload, InvoicePayload)),
    )


def _master_steps(master: Sequence[PreparedRecord]) -> tuple[UpsertStep, ...]:
    """One step per master-data route, in MASTER_STAGES order; generic lists one step per
    list key, since the key is the route's (`/v1/lists/{listKey}`)."""
    by_route: dict[tuple[MasterDataRoute, str | None], list[PreparedRecord]] = {}
    for record in master:
        if isinstance(record.payload, MasterDataPayload):
            route = record.payload.route
            by_route.setdefault((route, _list_key(record.payload)), []).append(record)
    order = list(MASTER_STAGES)
    return tuple(
        upsert_step(MASTER_STAGES[route], records)
        for (route, _), records in sorted(
            by_route.items(), key=lambda item: (order.index(item[0][0]), item[0][1] or "")
        )
    )


def _list_key(payload: MasterDataPayload) -> str | None:
    record = payload.record
    return record.list_key if isinstance(record, GenericListItem) else None


def missing_codes(
    record: PreparedRecord, accepted_codes: Collection[CodeRef], destination: Destination
) -> set[CodeRef]:
    named = codes_named(record.change, destination.layout)
    return {code for code in named if code[0] in destination.synced} - set(accepted_codes)


def admit_vendors(
    vendors: UpsertStep, accepted_codes: Collection[CodeRef], destination: Destination
) -> tuple[UpsertStep, list[tuple[PreparedRecord, str]]]:
    """The vendors whose payment term Basware has (batched again), and those that park."""
    going: list[PreparedRecord] = []
    waits: list[tuple[PreparedRecord, str]] = []
    for record in vendors.records:
        why = missing_codes_reason(missing_codes(record, accepted_codes, destination))
        if why is None:
            going.append(record)
        else:
            waits.append((record, why))
    if not waits:
        return vendors, []
    return upsert_step(Stage.VENDOR, going), waits


def admit(
    candidates: Sequence[PreparedRecord],
    known: KnownState,
    *,
    accepted_vendors: Collection[str],
    waiting_keys: Collection[str],
    accepted_codes: Collection[CodeRef] = (),
    destination: Destination | None = None,
) -> Admission:
    """Which dependents go now, given the vendors and codes accepted and the keys still
    waiting on Basware so far (the known state's and this batch's); a parked one is parked
    before it is compared with what Basware has, so that it keeps its place behind its key."""
    ready: list[PreparedRecord] = []
    waits: list[tuple[PreparedRecord, str]] = []
    for record in candidates:
        why = parking_reason(
            record.supplier,
            accepted_vendors=accepted_vendors,
            waiting_keys=waiting_keys,
            parked_keys=known.parked,
            missing_codes=(
                missing_codes(record, accepted_codes, destination) if destination else ()
            ),
        )
        if why is None:
            ready.append(record)
        else:
            waits.append((record, why))
    going, finished = _skip_unchanged(ready, known)
    return Admission(going=tuple(going), parked=tuple(waits), finished=tuple(finished))


def inactive_codes_reason(inactive: Collection[CodeRef]) -> str | None:
    """Why an invoice naming codes Basware holds as inactive is not uploaded."""
    if not inactive:
        return None
    named = ", ".join(_code_name(ref) for ref in sorted(inactive))
    return (
        f"its lines name {named}, inactive in Basware (deactivated in Visma); not uploaded, "
        "since an uploaded invoice cannot be recoded through the API: recode it in Visma"
    )


def refuse_inactive(
    invoices: Sequence[PreparedRecord], inactive: Collection[CodeRef], destination: Destination
) -> tuple[list[PreparedRecord], list[Delivery]]:
    """The invoices that may be uploaded, and those refused for naming an inactive code. An
    order naming one is sent, and Basware refuses its lines by code; an upload has no such
    answer, so the writer refuses the invoice itself (docs/basware-p2p.md §10.9)."""
    going: list[PreparedRecord] = []
    refused: list[Delivery] = []
    for record in invoices:
        named = codes_named(record.change, destination.layout) & set(inactive)
        if why := inactive_codes_reason(named):
            verdict = Verdict(outcome=Outcome.REJECTED, reasons=reason("InactiveCode", why))
            refused += fan_out(record.changes, verdict)
        else:
            going.append(record)
    return going, refused


def release_due(
    parked_keys: Collection[str],
    *,
    accepted_vendors: Collection[str],
    waiting_keys: Collection[str],
) -> bool:
    """Whether some parked key may be ready now (its vendor accepted, nothing pending)."""
    return any(k in accepted_vendors and k not in waiting_keys for k in parked_keys)


def parked_in_kafka_order(
    waits: Sequence[tuple[PreparedRecord, str]], batch: Sequence[ChangeEvent]
) -> list[tuple[ChangeEvent, str]]:
    """Every change of the waiting records with why it waits, in the batch's order."""
    position = {id(change): index for index, change in enumerate(batch)}
    return sorted(
        ((change, why) for record, why in waits for change in record.changes),
        key=lambda entry: position.get(id(entry[0]), -1),
    )


# --- batching to Basware's limits ---


def sent_at(stage: Stage, payload: Payload) -> list[BaswareModel]:
    """The Basware records a stage of a payload posts."""
    if stage in STAGE_OF_MASTER and isinstance(payload, MasterDataPayload):
        return [payload.record]
    if stage is Stage.VENDOR and isinstance(payload, VendorPayload):
        return [payload.vendor]
    if stage is Stage.ORDER and isinstance(payload, OrderPayload):
        return [payload.order]
    if stage is Stage.LINES and isinstance(payload, OrderPayload):
        return list(payload.lines)
    raise TypeError(f"{type(payload).__name__} has no {stage.value} stage")


def codes_at(stage: Stage, payload: Payload) -> list[str]:
    """The external codes of the records a stage of a payload posts."""
    if stage in STAGE_OF_MASTER and isinstance(payload, MasterDataPayload):
        return [payload.external_code]
    if stage is Stage.VENDOR and isinstance(payload, VendorPayload):
        return [payload.vendor.external_code]
    if stage is Stage.ORDER and isinstance(payload, OrderPayload):
        return [payload.order.external_code]
    if stage is Stage.LINES and isinstance(payload, OrderPayload):
        return [line.external_code for line in payload.lines]
    raise TypeError(f"{type(payload).__name__} has no {stage.value} stage")


def pack(items: Sequence[tuple[int, list[T]]], limit: int) -> list[list[tuple[int, list[T]]]]:
    """Requests of at most `limit` records, filled in order; an item's records stay in one
    request unless they alone exceed the limit."""
    chunks: list[list[tuple[int, list[T]]]] = []
    current: list[tuple[int, list[T]]] = []
    size = 0
    for index, records in items:
        if current and size + len(records) > limit:
            chunks.append(current)
            current, size = [], 0
        if len(records) > limit:
            chunks += [[(index, records[i : i + limit])] for i in range(0, len(records), limit)]
            continue
        current.append((index, records))
        size += len(records)
    if current:
        chunks.append(current)
    return chunks


def upsert_step(stage: Stage, records: Sequence[PreparedRecord]) -> UpsertStep:
    """The stage's records in POSTs within Basware's per-request record limit."""
    chunks = pack(
        [(i, sent_at(stage, p.payload)) for i, p in enumerate(records)], STAGE_LIMITS[stage]
    )
    return UpsertStep(
        stage=stage,
        records=tuple(records),
        batches=tuple(
            UpsertBatch(
                members=tuple(index for index, _ in chunk),
                records=tuple(r for _, sent in chunk for r in sent),
            )
            for chunk in chunks
        ),
    )


def lines_step(headers: Sequence[PreparedRecord]) -> tuple[UpsertStep, list[PreparedRecord]]:
    """After their headers are accepted, the orders' lines to post (Basware refuses orphan
    lines), and the orders without lines, which are done with their header."""
    with_lines = [p for p in headers if isinstance(p.payload, OrderPayload) and p.payload.lines]
    without = [p for p in headers if not (isinstance(p.payload, OrderPayload) and p.payload.lines)]
    return upsert_step(Stage.LINES, with_lines), without


def upload_step(invoices: Sequence[PreparedRecord], destination: Destination) -> UploadStep:
    """Admitted invoices as upload intents, or all refused when the connection has no
    SmartPDF receiving address."""
    if destination.receiving_email is None:
        verdict = misconfigured(
            f"connection {destination.connection} has no SmartPDF receiving address "
            "(BASWARE_RECEIVING_EMAIL)"
        )
        return UploadStep(finished=tuple(d for p in invoices for d in fan_out(p.changes, verdict)))
    payloads = [p.payload for p in invoices if isinstance(p.payload, InvoicePayload)]
    intents = [
        UploadIntent(
            changes=p.changes,
            payload_hash=p.payload_hash,
            invoice_number=p.payload.invoice.invoice_number,
            invoice_date=p.payload.invoice.invoice_date,
        )
        for p in invoices
        if isinstance(p.payload, InvoicePayload)
    ]
    return UploadStep(intents=tuple(intents), payloads=tuple(payloads))

"""The writer's domain types: what a record becomes for Basware, where it stands, what became
of it. Pure data, shared by the planner, the executor and the stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from mlconnector.contracts import (
    REFERENCE_ENTITIES,
    BaswareReason,
    ChangeEvent,
    DeliveryResult,
    Entity,
    Outcome,
    result_event_id,
)

# What Basware receives for a record: the mapping builds it (the console's preview too).
from mlconnector.mapping import Payload, code_deactivated

# A record of Visma as Basware knows it: its entity and id.
RecordRef = tuple[Entity, str]


def ref_of(change: ChangeEvent) -> RecordRef:
    return (change.entity, change.entity_id)


class Stage(StrEnum):
    """Where an upserted record is: a master-data record (one stage per Basware route), its
    vendor, its order header, or the header's lines."""

    PAYMENT_TERM = "payment_term"
    TAX_CODE = "tax_code"
    ACCOUNT = "account"
    COST_CENTER = "cost_center"
    PROJECT = "project"
    LIST = "list"  # generic-list items, one POST per list key
    VENDOR = "vendor"
    ORDER = "order"  # a matching-order header; its lines are sent once it is accepted
    LINES = "lines"


class RecordVersion(BaseModel):
    """One version of a record on its way: its changes in Kafka order (the last one is what
    is sent; the earlier ones are superseded and share its outcome) and the hash of the
    payload Basware receives for it."""

    model_config = ConfigDict(frozen=True)

    changes: tuple[ChangeEvent, ...]
    payload_hash: str

    @property
    def change(self) -> ChangeEvent:
        return self.changes[-1]

    @property
    def ref(self) -> RecordRef:
        return ref_of(self.change)

    @property
    def supplier(self) -> str:
        return self.change.supplier_number


class PreparedRecord(RecordVersion):
    """A record version with the payload Basware receives."""

    payload: Payload


# --- what became of a record ---


class Verdict(BaseModel):
    """One record's outcome in one Basware call."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reasons: tuple[BaswareReason, ...] = ()
    request_id: str | None = None
    attempts: int = 1

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.DELIVERED


class Delivery(BaseModel):
    """A change and what became of it."""

    model_config = ConfigDict(frozen=True)

    change: ChangeEvent
    verdict: Verdict

    def result(self, region: str | None) -> DeliveryResult:
        change, verdict = self.change, self.verdict
        return DeliveryResult(
            event_id=result_event_id(change.event_id, verdict.outcome, verdict.attempts),
            tenant=change.tenant,
            change_event_id=change.event_id,
            entity=change.entity,
            entity_id=change.entity_id,
            supplier_number=change.supplier_number,
            content_hash=change.content_hash,
            outcome=verdict.outcome,
            attempts=verdict.attempts,
            region=region,
            request_id=verdict.request_id,
            reasons=verdict.reasons,
        )


def fan_out(changes: Sequence[ChangeEvent], verdict: Verdict) -> list[Delivery]:
    """Superseded changes of a record share the outcome of the change that was sent."""
    return [Delivery(change=change, verdict=verdict) for change in changes]


def reason(category: str, message: str) -> tuple[BaswareReason, ...]:
    return (BaswareReason(category=category, message=message),)


# --- what PostgreSQL holds about records on their way ---


class PendingRecord(RecordVersion):
    """A record Basware answered 200 for, whose requestStatus is not final yet."""

    stage: Stage
    request_ids: tuple[str, ...]
    attempts: int
    posted_at: datetime | None = None


class Accepted(NamedTuple):
    """A record Basware accepted: its payload hash and request id; `active` False for a code
    Basware now holds as inactive (a deactivated account, tax code or segment value)."""

    ref: RecordRef
    payload_hash: str
    request_id: str | None
    active: bool = True


class UploadIntent(RecordVersion):
    """An invoice version to upload through SmartPDF, claimed before the upload starts."""

    # How the document is found again in Basware (GET /v1/accountingDocuments/status).
    invoice_number: str
    invoice_date: date
    started_at: datetime | None = None
    # Set once the PDF's PUT started (the document may exist from then on), and the bumId
    # once the PUT was answered (it does).
    sent_at: datetime | None = None
    bum_id: str | None = None
    # Parked until then: its attachment download found Visma's quota spent (nothing sent).
    quota_until: datetime | None = None


class LiveUpload(BaseModel):
    """The upload an invoice reached Basware with (or is reaching it with): one per invoice,
    whatever its later versions (docs/basware-p2p.md §10.8)."""

    model_config = ConfigDict(frozen=True)

    payload_hash: str
    uploaded: bool  # False: started, its answer not confirmed yet
    bum_id: str | None
    # How its document is found in Basware: the number and date of the version uploaded.
    invoice_number: str
    invoice_date: date
    # Parked for Visma's quota, nothing sent: a later version may take its place.
    waiting_for_quota: bool = False


class ParkedChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    change: ChangeEvent


class ParkedKey(BaseModel):
    """A key (tenant:supplier) claimed for release, with what waits in it, in Kafka order."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    supplier_number: str
    changes: tuple[ParkedChange, ...]


class KnownState(BaseModel):
    """What PostgreSQL knows about the records and keys of a delivery, read at its start."""

    model_config = ConfigDict(frozen=True)

    # The payload hash Basware last accepted per record.
    accepted: dict[RecordRef, str] = Field(default_factory=dict)
    # Suppliers whose vendor Basware accepted (in any version).
    vendors: frozenset[str] = frozenset()
    # (record, payload hash) Basware is processing now.
    in_flight: frozenset[tuple[RecordRef, str]] = frozenset()
    # Suppliers with a record Basware is still processing.
    waiting: frozenset[str] = frozenset()
    # Suppliers with parked changes (those being released not counted).
    parked: frozenset[str] = frozenset()
    # Codes among `accepted` whose last accepted version is inactive in Basware.
    inactive: frozenset[RecordRef] = frozenset()

    def codes_accepted(self) -> set[RecordRef]:
        """The reference records (codes) among `accepted`: Basware has them, in some version."""
        return {ref for ref in self.accepted if ref[0] in REFERENCE_ENTITIES}


# --- what a delivery hands back ---


class Settlement(BaseModel):
    """What PostgreSQL must learn once results are out: final records leave the pending
    table (accepted ones are remembered), confirmed uploads are done, refused ones dropped."""

    done: list[PendingRecord] = Field(default_factory=list)
    accepted: list[Accepted] = Field(default_factory=list)
    uploaded: list[tuple[UploadIntent, str | None]] = Field(default_factory=list)
    abandoned: list[UploadIntent] = Field(default_factory=list)

    def everything_accepted(self) -> list[Accepted]:
        """What Basware accepted: final records, and uploads with their bumId."""
        return [*self.accepted, *accepted_uploads(self.uploaded)]


def accepted_uploads(done: Sequence[tuple[UploadIntent, str | None]]) -> list[Accepted]:
    return [Accepted(intent.ref, intent.payload_hash, bum_id) for intent, bum_id in done]


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
            active = not code_deactivated(record.change)
            self.settlement.accepted.append(
                Accepted(record.ref, record.payload_hash, verdict.request_id, active)
            )

"""Upserts of one tenant (docs/basware-p2p.md §7, §10.7): a stage's POSTs, each answered one
recorded as pending in PostgreSQL before its requestStatus is awaited, and followed up to
`status_wait_seconds`; an accepted order header has its lines posted and followed in turn.
What is not final by then is left to the follow-up."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from basware_writer.domain import (
    Accepted,
    Outcomes,
    PendingRecord,
    PreparedRecord,
    RecordRef,
    Stage,
    Verdict,
)
from basware_writer.planner import UpsertBatch, UpsertStep, codes_at, lines_step, prepare
from basware_writer.ports import BaswareCalls, WriterState
from basware_writer.request_status import final_statuses
from basware_writer.verdicts import StatusIndex, failed, record_verdict, rejected_by_http
from mlconnector.basware.errors import BaswareError, BaswareRejected
from mlconnector.basware.models import AcceptedRequest
from mlconnector.contracts import Outcome
from mlconnector.mapping import (
    DEFAULT_LAYOUT,
    CodingLayout,
    MasterDataPayload,
    code_deactivated,
    placed_code_of,
)
from mlconnector.retry import RetriesExhausted

# The payloads of a delivery, by record and payload hash, so that nothing is mapped twice.
Known = dict[tuple[RecordRef, str], PreparedRecord]
# Keeps freshly answered records in PostgreSQL; returns those this writer follows.
StoreAnswered = Callable[[Sequence[PendingRecord]], Awaitable[list[PendingRecord]]]


@dataclass(frozen=True)
class Posted:
    """What one POST of a step did: the requests Basware answered, or why it refused."""

    batch: UpsertBatch
    requests: list[AcceptedRequest]
    attempts: int
    refusal: Verdict | None


class Upserts:
    def __init__(
        self,
        tenant: str,
        basware: BaswareCalls,
        state: WriterState,
        company_code: str | None,
        status_wait_seconds: float,
        *,
        layout: CodingLayout = DEFAULT_LAYOUT,
    ) -> None:
        self.tenant = tenant
        self._basware = basware
        self._state = state
        self._company = company_code
        self._layout = layout
        self._status_wait = status_wait_seconds

    async def send(self, step: UpsertStep) -> Outcomes:
        """POSTs the step, records what Basware took as pending, follows it."""
        outcomes = Outcomes()
        if not step.records:
            return outcomes
        state = self._state

        async def record(posted: Sequence[PendingRecord]) -> list[PendingRecord]:
            return await state.pending.record(self.tenant, posted, state.owner)

        mine, refused = await self._post(step, record)
        for record_refused, verdict in refused:
            outcomes.finish(record_refused, verdict)
        known: Known = {(p.ref, p.payload_hash): p for p in step.records}
        outcomes.add(await self.follow(mine, self._status_wait, known))
        return outcomes

    async def _post_batch(self, stage: Stage, batch: UpsertBatch) -> Posted:
        try:
            requests, attempts = await self._basware.upsert(stage, batch)
        except RetriesExhausted as exc:
            return Posted(batch, [], exc.attempts, failed(str(exc), attempts=exc.attempts))
        except BaswareRejected as exc:
            return Posted(batch, [], 1, rejected_by_http(exc, attempts=1))
        except BaswareError as exc:
            # Credentials, scope or region refused: not the record's fault, so replayable.
            return Posted(batch, [], 1, failed(str(exc), attempts=1, category="Basware"))
        return Posted(batch, requests, attempts, None)

    async def _post(
        self, step: UpsertStep, store: StoreAnswered
    ) -> tuple[list[PendingRecord], list[tuple[PendingRecord, Verdict]]]:
        """POSTs the step's batches concurrently; each record gets the requests that carried
        its codes, or the refusal of one of its POSTs. A record is handed to `store` as soon
        as every POST carrying it is answered, not once the whole step is: what Basware took
        is in PostgreSQL at once, so a writer killed in the middle of a step does not leave
        it to be posted again. Returns what `store` kept, and the refused records."""
        request_ids: dict[int, list[str]] = {}
        attempts: dict[int, int] = {}
        refusals: dict[int, Verdict] = {}
        unanswered = Counter(index for batch in step.batches for index in batch.members)
        sent: list[PendingRecord] = []
        refused: list[tuple[PendingRecord, Verdict]] = []

        async def answered(indexes: Sequence[int]) -> None:
            records = {i: self._pending(step, i, request_ids, attempts) for i in indexes}
            refused.extend((records[i], refusals[i]) for i in indexes if i in refusals)
            sent.extend(await store([records[i] for i in indexes if i not in refusals]))

        async def post(batch: UpsertBatch) -> None:
            posted = await self._post_batch(step.stage, batch)
            complete: list[int] = []
            for index in posted.batch.members:
                attempts[index] = max(attempts.get(index, 0), posted.attempts)
                if posted.refusal is not None:
                    refusals.setdefault(index, posted.refusal)
                codes = set(codes_at(step.stage, step.records[index].payload))
                request_ids.setdefault(index, []).extend(
                    r.request_id for r in posted.requests if codes & set(r.external_codes)
                )
                unanswered[index] -= 1
                if unanswered[index] == 0:
                    complete.append(index)
            await answered(complete)

        await answered([i for i in range(len(step.records)) if i not in unanswered])
        await asyncio.gather(*(post(b) for b in step.batches))
        return sent, refused

    @staticmethod
    def _pending(
        step: UpsertStep, index: int, request_ids: dict[int, list[str]], attempts: dict[int, int]
    ) -> PendingRecord:
        p = step.records[index]
        return PendingRecord(
            changes=p.changes,
            payload_hash=p.payload_hash,
            stage=step.stage,
            request_ids=tuple(dict.fromkeys(request_ids.get(index, []))),
            attempts=attempts.get(index, 1),
        )

    async def follow(
        self, records: Sequence[PendingRecord], wait: float, known: Known | None = None
    ) -> Outcomes:
        """Follows the records' requests up to `wait` seconds; an accepted header has its
        lines posted (and followed); records not final by then stay pending."""
        outcomes = Outcomes()
        if not records:
            return outcomes
        request_ids = list(dict.fromkeys(i for r in records for i in r.request_ids))
        statuses = await final_statuses(self._basware.request_status, request_ids, wait)
        index = StatusIndex(statuses.values())
        headers_accepted: list[PendingRecord] = []
        still: list[PendingRecord] = []
        for record in records:
            found = [statuses[i] for i in record.request_ids if i in statuses]
            if len(found) < len(record.request_ids):
                still.append(record)
                continue
            payload = self._prepared(record, known).payload
            codes = codes_at(record.stage, payload)
            verdict = record_verdict(codes, found, attempts=record.attempts, index=index)
            if record.stage is Stage.ORDER and verdict.accepted:
                headers_accepted.append(record)
                continue
            outcomes.finish(record, verdict)
            placed = placed_code_of(payload) if isinstance(payload, MasterDataPayload) else None
            if verdict.accepted and placed is not None:
                # Orders name the code as placed: remembered beside the Visma record.
                active = not code_deactivated(record.change)
                outcomes.settlement.accepted.append(
                    Accepted(placed, record.payload_hash, verdict.request_id, active)
                )
        if headers_accepted:
            outcomes.add(await self._send_lines(headers_accepted, wait, known))
        state = self._state
        await state.pending.hand_off(self.tenant, still, state.owner)
        outcomes.open_keys |= {r.change.supplier_number for r in still}
        return outcomes

    async def _send_lines(
        self, headers: Sequence[PendingRecord], wait: float, known: Known | None
    ) -> Outcomes:
        outcomes = Outcomes()
        by_key = {(h.ref, h.payload_hash): h for h in headers}
        step, without_lines = lines_step([self._prepared(h, known) for h in headers])
        for p in without_lines:
            header = by_key[(p.ref, p.payload_hash)]
            outcomes.finish(header, Verdict(outcome=Outcome.DELIVERED, attempts=header.attempts))

        async def advance(posted: Sequence[PendingRecord]) -> list[PendingRecord]:
            await self._state.pending.advance(self.tenant, posted)
            return list(posted)

        posted, refused = await self._post(step, advance)
        for record, verdict in refused:
            outcomes.finish(record, verdict)
        outcomes.add(await self.follow(posted, wait, known))
        return outcomes

    def _prepared(self, record: PendingRecord, known: Known | None) -> PreparedRecord:
        """The record's payload: at hand within a delivery, mapped again in the follow-up."""
        found = (known or {}).get((record.ref, record.payload_hash))
        return found or prepare(record.changes, self._company or "", self._layout)

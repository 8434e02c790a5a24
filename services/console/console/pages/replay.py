"""Replay: choose failed or rejected records (or one record), see the dry run, give a reason,
confirm. Audited with the user and the reason.

Two ways to replay:
- send again what the log holds, through the code `mlconnector replay` uses
  (`mlconnector.audit.replay`): for causes fixed outside Visma (credentials, Basware's master
  data, an outage);
- read again from Visma: for data fixed in Visma. The log's version would only be refused
  again; visma-reader is asked to poll the record's entity now (a VismaNotification, as a
  Visma webhook would), and publishes the fixed version as it would on its schedule.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData

from console.access import Role
from console.actions import operator_action
from console.users import Session
from console.web import Access, BadInput, bad_input, page, state_of
from mlconnector.audit.replay import (
    FailedRecords,
    OneRecord,
    ReplayAction,
    ReplayItem,
    ReplayNotPossible,
    kafka_replay_publisher,
    replay,
)
from mlconnector.audit.status import REPLAYABLE_STATES, StatusFilter, record_statuses
from mlconnector.contracts import Entity, VismaNotification
from mlconnector.topics import Topic

router = APIRouter()
Operator = Annotated[Session, Depends(Access(Role.OPERATOR))]


class ReplayMethod(StrEnum):
    RESEND = "resend"
    REREAD = "reread"


class ReplayRequest(BaseModel):
    selection: Annotated[FailedRecords | OneRecord, Field(discriminator="kind")]
    method: ReplayMethod = ReplayMethod.RESEND
    dry_run: bool = True
    # Required unless a dry run: it goes into the audit log beside the user's name.
    reason: str | None = None


class Reread(BaseModel):
    tenant: str
    entity: Entity
    entity_ids: list[str]


class ReplayAnswer(BaseModel):
    dry_run: bool
    method: ReplayMethod
    # Sending again: each logged change, and what is (or would be) done with it and why.
    items: list[ReplayItem]
    # Reading again: the records visma-reader is (or would be) asked to read again.
    rereads: list[Reread]
    summary: str


def _what(selection: FailedRecords | OneRecord) -> str:
    if isinstance(selection, OneRecord):
        return f"{selection.entity.value} {selection.entity_id}"
    return "failed and rejected records" + (f" of {selection.tenant}" if selection.tenant else "")


async def _rereads(request: Request, selection: FailedRecords | OneRecord) -> list[Reread]:
    query = (
        StatusFilter(
            tenant=selection.tenant, entity=selection.entity, entity_id=selection.entity_id
        )
        if isinstance(selection, OneRecord)
        else StatusFilter(
            tenant=selection.tenant,
            entity=selection.entity,
            states=REPLAYABLE_STATES,
            since=selection.since,
            until=selection.until,
        )
    )
    async with state_of(request).pool.acquire() as conn:
        found = await record_statuses(conn, query)
    grouped: dict[tuple[str, Entity], list[str]] = {}
    for status in found:
        grouped.setdefault((status.tenant, Entity(status.entity)), []).append(status.entity_id)
    return [Reread(tenant=t, entity=e, entity_ids=ids) for (t, e), ids in sorted(grouped.items())]


async def _resend(request: Request, wanted: ReplayRequest) -> list[ReplayItem]:
    state = state_of(request)
    try:
        async with state.pool.acquire() as conn:
            if wanted.dry_run:
                report = await replay(conn, wanted.selection, None, dry_run=True)
            else:
                async with kafka_replay_publisher(state.kafka, state.changes_topic) as publisher:
                    report = await replay(conn, wanted.selection, publisher)
    except ReplayNotPossible as error:
        raise BadInput(str(error)) from None
    return report.items


def _summary(answer: ReplayAnswer) -> str:
    if answer.method is ReplayMethod.REREAD:
        records = sum(len(r.entity_ids) for r in answer.rereads)
        verb = "would be read again" if answer.dry_run else "are read again"
        return f"{records} records {verb} from Visma; a fixed version is sent, an unchanged one not"
    done = sum(
        1 for i in answer.items if i.action in (ReplayAction.REPLAYED, ReplayAction.WOULD_REPLAY)
    )
    skipped = len(answer.items) - done
    verb = "would be sent again" if answer.dry_run else "sent again"
    return f"{done} {verb}, {skipped} not (each says why)"


async def run_replay(request: Request, session: Session, wanted: ReplayRequest) -> ReplayAnswer:
    """The dry run, or the replay itself; a replay of nothing is refused and changes nothing."""
    if not wanted.dry_run and not (wanted.reason and wanted.reason.strip()):
        raise BadInput("give a reason: it goes into the audit log with your name")
    state = state_of(request)
    items: list[ReplayItem] = []
    rereads: list[Reread] = []
    if wanted.method is ReplayMethod.REREAD:
        rereads = await _rereads(request, wanted.selection)
        if not rereads:
            raise BadInput(
                f"nothing to read again: the audit log holds no {_what(wanted.selection)}"
            )
        if not wanted.dry_run:
            for reread in rereads:
                await state.producer.send(
                    Topic.VISMA_NOTIFICATIONS,
                    VismaNotification(
                        event_id=str(uuid.uuid4()),
                        tenant=reread.tenant,
                        notification_id=f"console-{uuid.uuid4()}",
                        entity=reread.entity,
                        event="console.reread",
                        record_key=reread.entity_ids[0] if len(reread.entity_ids) == 1 else None,
                    ),
                )
    else:
        items = await _resend(request, wanted)
        if not items:
            raise BadInput(f"nothing to replay: the audit log holds no {_what(wanted.selection)}")
    answer = ReplayAnswer(
        dry_run=wanted.dry_run, method=wanted.method, items=items, rereads=rereads, summary=""
    )
    answer.summary = _summary(answer)
    if not wanted.dry_run:
        one = wanted.selection if isinstance(wanted.selection, OneRecord) else None
        await state.audit(
            operator_action(
                session.user.name,
                "replay" if wanted.method is ReplayMethod.RESEND else "read again from Visma",
                role=session.user.role,
                tenant=wanted.selection.tenant
                or (rereads[0].tenant if len(rereads) == 1 else None),
                target=_what(wanted.selection),
                reason=wanted.reason,
                detail=answer.summary,
                entity=one.entity if one else None,
                entity_id=one.entity_id if one else None,
            )
        )
    return answer


def request_of(form: FormData, *, dry_run: bool) -> ReplayRequest:
    """The replay a form asks for; its mistakes in plain words."""
    values = {k: v for k, v in form.items() if isinstance(v, str) and v.strip()}
    kind = values.get("kind", "failed")
    selection: dict[str, object] = {"kind": kind, "tenant": values.get("tenant")}
    if kind == "record":
        selection |= {"entity": values.get("entity"), "entity_id": values.get("entity_id")}
    else:
        selection |= {k: values.get(k) for k in ("entity", "since", "until")}
    try:
        return ReplayRequest.model_validate(
            {
                "selection": selection,
                "method": values.get("method", ReplayMethod.RESEND),
                "dry_run": dry_run,
                "reason": values.get("reason"),
            }
        )
    except ValidationError as error:
        raise bad_input("the selection is wrong", error) from None


@router.get("/replay", include_in_schema=False)
async def replay_page(request: Request, session: Operator) -> Response:
    return page(
        request,
        "replay.html",
        {
            "values": dict(request.query_params),
            "answer": None,
            "error": None,
            "entities": list(Entity),
        },
    )


async def _form_answer(request: Request, session: Session, *, dry_run: bool) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    context: dict[str, object] = {"values": values, "entities": list(Entity), "error": None}
    try:
        answer = await run_replay(request, session, request_of(form, dry_run=dry_run))
    except BadInput as error:
        return page(
            request, "replay.html", context | {"answer": None, "error": error.detail}, status=400
        )
    return page(request, "replay.html", context | {"answer": answer})


@router.post("/replay/dry-run", include_in_schema=False)
async def dry_run_form(request: Request, session: Operator) -> Response:
    return await _form_answer(request, session, dry_run=True)


@router.post("/replay", include_in_schema=False)
async def replay_form(request: Request, session: Operator) -> Response:
    return await _form_answer(request, session, dry_run=False)


@router.post("/api/replay", response_model=ReplayAnswer, tags=["replay"])
async def replay_api(request: Request, wanted: ReplayRequest, session: Operator) -> ReplayAnswer:
    """A dry run (the default) or a replay of failed/rejected records or one record: sent
    again from the log, or read again from Visma. A replay needs a reason (operator)."""
    return await run_replay(request, session, wanted)

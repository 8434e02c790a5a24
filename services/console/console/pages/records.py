"""Records: where each record stands, filtered; and one record's lineage with Basware's reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from console.access import Role
from console.users import Session
from console.web import Access, BadInput, bad_input, page, state_of
from mlconnector.audit.lineage import LineageStep, record_lineage
from mlconnector.audit.status import RecordState, RecordStatus, StatusFilter, record_statuses
from mlconnector.connection_store.store import connection_names
from mlconnector.contracts import Entity

router = APIRouter()
Viewer = Annotated[Session, Depends(Access(Role.VIEWER))]


class RecordQuery(BaseModel):
    """The Records page's filters; every one optional."""

    tenant: str | None = None
    entity: Entity | None = None
    states: list[RecordState] = Field(default_factory=list)
    # On the latest result's time (UTC when no offset is given).
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    # A Visma id: supplier number, order number, or TYPE/REFNBR for an invoice.
    visma_id: str | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class RecordsAnswer(BaseModel):
    query: RecordQuery
    records: list[RecordStatus]


class Lineage(BaseModel):
    entity: Entity
    entity_id: str
    status: list[RecordStatus]
    steps: list[LineageStep]


def _utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


async def find_records(request: Request, query: RecordQuery) -> RecordsAnswer:
    async with state_of(request).pool.acquire() as conn:
        found = await record_statuses(
            conn,
            StatusFilter(
                tenant=query.tenant,
                entity=query.entity,
                entity_id=query.visma_id,
                states=tuple(query.states),
                since=_utc(query.since),
                until=_utc(query.until),
                category=query.category,
                limit=query.limit,
            ),
        )
    return RecordsAnswer(query=query, records=found)


async def lineage_of(
    request: Request, entity: Entity, entity_id: str, tenant: str | None
) -> Lineage:
    async with state_of(request).pool.acquire() as conn:
        steps = await record_lineage(conn, entity, entity_id, tenant)
        status = await record_statuses(
            conn, StatusFilter(tenant=tenant, entity=entity, entity_id=entity_id)
        )
    return Lineage(entity=entity, entity_id=entity_id, status=status, steps=steps)


def query_of(request: Request) -> RecordQuery:
    """The filters of a Records page URL; a blank field filters nothing."""
    params = request.query_params
    values: dict[str, object] = {k: v for k, v in params.items() if v.strip() and k != "states"}
    values["states"] = [s for s in params.getlist("states") if s]
    try:
        return RecordQuery.model_validate(values)
    except ValidationError as error:
        raise bad_input("the filters are wrong", error) from None


@router.get("/records", include_in_schema=False)
async def records_page(request: Request, session: Viewer) -> Response:
    state = state_of(request)
    async with state.pool.acquire() as conn:
        tenants = await connection_names(conn)
    context: dict[str, object] = {
        "tenants": tenants,
        "entities": list(Entity),
        "record_states": list(RecordState),
        "error": None,
    }
    try:
        query = query_of(request)
    except BadInput as error:
        context |= {"answer": RecordsAnswer(query=RecordQuery(), records=[]), "error": error.detail}
        return page(request, "records.html", context, status=400)
    query = query.model_copy(update={"limit": min(query.limit, state.settings.page_size)})
    context["answer"] = await find_records(request, query)
    return page(request, "records.html", context)


@router.get("/records/{entity}/{entity_id:path}", include_in_schema=False)
async def lineage_page(
    request: Request, entity: Entity, entity_id: str, session: Viewer, tenant: str | None = None
) -> Response:
    return page(
        request, "lineage.html", {"lineage": await lineage_of(request, entity, entity_id, tenant)}
    )


@router.get("/api/records", response_model=RecordsAnswer, tags=["records"])
async def records_api(
    request: Request, session: Viewer, query: Annotated[RecordQuery, Query()]
) -> RecordsAnswer:
    """Where each record stands (latest change, latest result, attempts, Basware's reasons),
    newest first, filtered by tenant, entity, states, result time, category or Visma id."""
    return await find_records(request, query)


@router.get("/api/records/{entity}/{entity_id:path}", response_model=Lineage, tags=["records"])
async def lineage_api(
    request: Request, entity: Entity, entity_id: str, session: Viewer, tenant: str | None = None
) -> Lineage:
    """One record's whole story, oldest first: Visma changes and replays, Basware results
    with their reasons, operators' actions, webhooks."""
    return await lineage_of(request, entity, entity_id, tenant)

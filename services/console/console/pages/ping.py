"""Ping and preview: the checks of `mlconnector ping` in plain words, then what would sync."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from console.access import Role
from console.preview import Preview, preview
from console.users import Session
from console.web import Access, Refused, page, state_of
from mlconnector.connection_checks import PingReport, ping
from mlconnector.connections import ConnectionNotFound

router = APIRouter()
Operator = Annotated[Session, Depends(Access(Role.OPERATOR))]


class PingAnswer(BaseModel):
    report: PingReport
    # Only once Visma answered: the preview reads from it.
    preview: Preview | None


async def ping_and_preview(request: Request, name: str) -> PingAnswer:
    state = state_of(request)
    try:
        connection = await state.connections().get(name)
    except ConnectionNotFound as error:
        raise Refused(404, str(error)) from None
    report = await ping(connection)
    visma_ok = all(c.ok for c in report.checks if c.system == "Visma")
    found = await preview(connection, state.settings.preview_records) if visma_ok else None
    return PingAnswer(report=report, preview=found)


@router.get("/connections/{name}/ping", include_in_schema=False)
async def ping_page(request: Request, name: str, session: Operator) -> Response:
    return page(request, "ping.html", {"name": name, "answer": None})


@router.post("/connections/{name}/ping", include_in_schema=False)
async def ping_form(request: Request, name: str, session: Operator) -> Response:
    answer = await ping_and_preview(request, name)
    return page(request, "ping.html", {"name": name, "answer": answer})


@router.post("/api/connections/{name}/ping", response_model=PingAnswer, tags=["connections"])
async def ping_api(request: Request, name: str, session: Operator) -> PingAnswer:
    """The checks of `mlconnector ping` (a token and one harmless read on each side, the
    clocks), then a read-only preview: counts per entity in Visma and the first records
    mapped to their Basware payloads with any preflight rejection (operator)."""
    return await ping_and_preview(request, name)

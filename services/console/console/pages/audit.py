"""Audit: verify the log's hash chains, and the latest operators' actions it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from console.access import Role
from console.users import Session
from console.web import Access, page, state_of
from mlconnector.audit.verify import VerifyReport, verify_log
from mlconnector.contracts import OperatorAction

router = APIRouter()
Viewer = Annotated[Session, Depends(Access(Role.VIEWER))]
Operator = Annotated[Session, Depends(Access(Role.OPERATOR))]
ACTIONS_SHOWN = 50


class LoggedAction(BaseModel):
    logged_at: datetime
    action: OperatorAction


class VerifyAnswer(BaseModel):
    ok: bool
    report: VerifyReport


async def recent_actions(request: Request) -> list[LoggedAction]:
    rows = await state_of(request).pool.fetch(
        "SELECT arrived_at, payload FROM audit_log WHERE event_type = $1"
        " ORDER BY seq DESC LIMIT $2",
        OperatorAction.event_type,
        ACTIONS_SHOWN,
    )
    return [
        LoggedAction(
            logged_at=r["arrived_at"], action=OperatorAction.model_validate_json(r["payload"])
        )
        for r in rows
    ]


async def verify(request: Request) -> VerifyAnswer:
    async with state_of(request).pool.acquire() as conn:
        report = await verify_log(conn)
    return VerifyAnswer(ok=report.ok, report=report)


@router.get("/audit", include_in_schema=False)
async def audit_page(request: Request, session: Viewer) -> Response:
    return page(request, "audit.html", {"actions": await recent_actions(request), "verified": None})


@router.post("/audit/verify", include_in_schema=False)
async def verify_form(request: Request, session: Operator) -> Response:
    verified = await verify(request)
    return page(
        request, "audit.html", {"actions": await recent_actions(request), "verified": verified}
    )


@router.get("/api/audit/actions", response_model=list[LoggedAction], tags=["audit"])
async def actions_api(request: Request, session: Viewer) -> list[LoggedAction]:
    """The latest operators' actions in the audit log, newest first."""
    return await recent_actions(request)


@router.post("/api/audit/verify", response_model=VerifyAnswer, tags=["audit"])
async def verify_api(request: Request, session: Operator) -> VerifyAnswer:
    """Checks every row of the log against its hash chain, as `mlconnector audit verify`
    does (operator)."""
    return await verify(request)

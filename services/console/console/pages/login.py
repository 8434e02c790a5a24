"""Logging in and out, as a page and as the API's session resource.

The login form carries a CSRF token of its own (a cookie and a hidden field that must
match), so another site cannot log a browser in under its own account. Every attempt is
audited, refused ones too, with the name typed (never the password).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, SecretStr

from console.access import Role, tokens_match
from console.actions import operator_action
from console.users import LoginResult, Session, close_session, log_in, open_session
from console.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Access,
    Notice,
    Problem,
    now,
    page,
    state_of,
)

router = APIRouter()
Viewer = Annotated[Session, Depends(Access(Role.VIEWER))]


class Credentials(BaseModel):
    name: str
    password: SecretStr


class SessionAnswer(BaseModel):
    user: str
    role: Role
    # Send it as the X-CSRF-Token header with every write.
    csrf_token: str


def _cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=state_of(request).settings.secure_cookies,
        samesite="strict",
        path="/",
    )


async def attempt(request: Request, credentials: Credentials) -> LoginResult:
    state = state_of(request)
    result = await log_in(state.pool, credentials.name, credentials.password, now(), state.policy)
    refusal = f": {result.refusal.value}" if result.refusal else ""
    await state.audit(
        operator_action(
            credentials.name[:100],
            "login" if result.user else "login refused",
            role=result.user.role if result.user else None,
            succeeded=result.user is not None,
            detail=f"from {request.client.host if request.client else 'unknown'}{refusal}",
        )
    )
    return result


def _safe_next(target: str | None) -> str:
    # Only a path of this console: never a redirect to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/overview"


@router.get("/login", include_in_schema=False)
async def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(request.query_params.get("next")), "error": None},
    )
    _cookie(response, request, LOGIN_CSRF_COOKIE, token)
    return response


@router.post("/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    form = await request.form()
    target = _safe_next(str(form.get("next") or ""))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    given = form.get("csrf_token")
    if cookie is None or not tokens_match(cookie, given if isinstance(given, str) else None):
        return page(
            request,
            "login.html",
            {"login_csrf": "", "next": target, "error": "the form is stale: reload the page"},
            status=403,
        )
    result = await attempt(
        request,
        Credentials(
            name=str(form.get("name") or ""), password=SecretStr(str(form.get("password") or ""))
        ),
    )
    if result.user is None:
        assert result.refusal is not None
        response = page(
            request,
            "login.html",
            {"login_csrf": cookie, "next": target, "error": result.refusal.value},
            status=401,
        )
        return response
    token, _ = await open_session(state_of(request).pool, result.user)
    redirect = RedirectResponse(target, 303)
    _cookie(redirect, request, SESSION_COOKIE, token)
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return redirect


async def _log_out(request: Request, session: Session) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await close_session(state_of(request).pool, token)
    await state_of(request).audit(
        operator_action(session.user.name, "logout", role=session.user.role)
    )


@router.post("/logout", include_in_schema=False)
async def logout_form(request: Request, session: Viewer) -> Response:
    await _log_out(request, session)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post(
    "/api/session",
    response_model=SessionAnswer,
    responses={401: {"model": Problem}},
    tags=["session"],
)
async def login_api(request: Request, credentials: Credentials) -> Response:
    """Logs in: sets the session cookie and answers the CSRF token for later writes."""
    result = await attempt(request, credentials)
    if result.user is None:
        assert result.refusal is not None
        return JSONResponse(Problem(detail=result.refusal.value).model_dump(), 401)
    token, session = await open_session(state_of(request).pool, result.user)
    answer = SessionAnswer(
        user=session.user.name, role=session.user.role, csrf_token=session.csrf_token
    )
    response = JSONResponse(answer.model_dump(mode="json"))
    _cookie(response, request, SESSION_COOKIE, token)
    return response


@router.get("/api/session", response_model=SessionAnswer, tags=["session"])
async def session_api(request: Request, session: Viewer) -> SessionAnswer:
    """Who is logged in, and the CSRF token of this login."""
    return SessionAnswer(
        user=session.user.name, role=session.user.role, csrf_token=session.csrf_token
    )


@router.delete("/api/session", response_model=Notice, tags=["session"])
async def logout_api(request: Request, session: Viewer) -> Response:
    """Logs out: this login's cookie opens nothing any more."""
    await _log_out(request, session)
    response = JSONResponse(Notice(detail="logged out").model_dump())
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response

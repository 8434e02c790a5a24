"""Connections: list, add (checked against both systems first), schedules, coding layout,
enable, remove."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from console.access import Role
from console.actions import operator_action
from console.connection_views import (
    CodingForm,
    ConnectionForm,
    ConnectionView,
    ScheduleForm,
    basware_credentials,
    coding_of,
    connection_of,
    connection_view,
    host_table,
    schedule_of,
)
from console.users import Session
from console.web import Access, BadInput, Notice, Refused, page, state_of
from mlconnector.audit.replay import kafka_replay_publisher
from mlconnector.basware import DEFAULT_SCOPES, BaswareHosts
from mlconnector.basware.auth import locate_region
from mlconnector.coding_change import CodingChange, CodingRefused, rederive, set_coding
from mlconnector.connection_checks import ping
from mlconnector.connection_store import ConnectionExists
from mlconnector.connections import Connection, ConnectionInvalid, ConnectionNotFound
from mlconnector.home import HomeFolder, StackFileUnreadable, read_stack_file
from mlconnector.mapping import SegmentTarget

router = APIRouter()
Viewer = Annotated[Session, Depends(Access(Role.VIEWER))]
Operator = Annotated[Session, Depends(Access(Role.OPERATOR))]
Admin = Annotated[Session, Depends(Access(Role.ADMIN))]


class EnabledForm(BaseModel):
    enabled: bool


async def _get(request: Request, name: str) -> Connection:
    try:
        return await state_of(request).connections().get(name)
    except ConnectionNotFound as error:
        raise Refused(404, str(error)) from None


async def add_connection(request: Request, session: Session, form: ConnectionForm) -> Connection:
    """Stores the connection only once Basware knows its region and a ping of both systems
    passes: a wrong secret, company id or host is said now and nothing is stored."""
    import httpx

    from mlconnector.connection_checks import TIMEOUT_SECONDS

    state = state_of(request)
    store = state.connections()
    try:
        hosts = host_table(form)
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
            verdict = await locate_region(
                basware_credentials(form),
                hosts or BaswareHosts.public(),
                http=http,
                scopes=DEFAULT_SCOPES,
            )
        if verdict.region is None:
            raise BadInput(f"Basware: {verdict.problem}: {verdict.detail}")
        connection = connection_of(form, verdict.region, hosts)
    except ConnectionInvalid as error:
        raise BadInput(str(error)) from None
    report = await ping(connection)
    if not report.ok:
        failed = "; ".join(
            f"{c.system} {c.step}: {c.problem}: {c.detail}" for c in report.checks if not c.ok
        )
        raise BadInput(f"not added, the checks failed: {failed}")
    try:
        await store.add(connection)
    except ConnectionExists as error:
        raise BadInput(str(error)) from None
    await state.audit(
        operator_action(
            session.user.name,
            "connection added",
            role=session.user.role,
            tenant=connection.tenant,
            target=connection.name,
            detail=f"Visma company {connection.tenant} <-> Basware region {verdict.region.value}",
        )
    )
    return connection


async def change_schedule(
    request: Request, session: Session, name: str, form: ScheduleForm
) -> Connection:
    try:
        schedule = schedule_of(form)
    except ValueError as error:
        raise BadInput(str(error)) from None
    state = state_of(request)
    try:
        updated = await state.connections().update_schedule(name, form.entity, schedule)
    except ConnectionNotFound as error:
        raise Refused(404, str(error)) from None
    await state.audit(
        operator_action(
            session.user.name,
            "schedule changed",
            role=session.user.role,
            tenant=updated.tenant,
            target=f"{name} {form.entity.value}",
            detail=str(schedule) if schedule else "the reader's default interval",
        )
    )
    return updated


async def change_coding(
    request: Request, session: Session, name: str, form: CodingForm
) -> CodingChange:
    """Checks the layout against Visma, stores it and sends again what it recodes: the
    command line's `connections coding`, through the same functions (coding_change.py)."""
    state = state_of(request)
    try:
        layout = coding_of(form)
        change = await set_coding(state.connections(), name, layout)
    except (ValueError, CodingRefused) as error:
        raise BadInput(str(error)) from None
    except ConnectionNotFound as error:
        raise Refused(404, str(error)) from None
    if change.changed:
        async with (
            state.pool.acquire() as log,
            kafka_replay_publisher(state.kafka, state.changes_topic) as out,
        ):
            change = await rederive(change, log, out)
    await state.audit(
        operator_action(
            session.user.name,
            "coding changed",
            role=session.user.role,
            tenant=change.after.tenant,
            target=name,
            detail=f"{change.summary()}; {change.resent} records re-sent",
        )
    )
    return change


async def set_enabled(request: Request, session: Session, name: str, enabled: bool) -> Connection:
    state = state_of(request)
    try:
        updated = await state.connections().set_enabled(name, enabled)
    except ConnectionNotFound as error:
        raise Refused(404, str(error)) from None
    await state.audit(
        operator_action(
            session.user.name,
            "connection enabled" if enabled else "connection disabled",
            role=session.user.role,
            tenant=updated.tenant,
            target=name,
        )
    )
    return updated


async def remove_connection(request: Request, session: Session, name: str) -> None:
    state = state_of(request)
    connection = await _get(request, name)
    await state.connections().remove(name)
    await state.audit(
        operator_action(
            session.user.name,
            "connection removed",
            role=session.user.role,
            tenant=connection.tenant,
            target=name,
        )
    )


def _form_values(form: FormData) -> dict[str, object]:
    # A blank field is one left out: its default applies, or it is missing.
    values: dict[str, object] = {
        k: v
        for k, v in form.items()
        if k != "entities" and not (isinstance(v, str) and not v.strip())
    }
    values["entities"] = form.getlist("entities")
    values["write_back"] = "write_back" in form
    return values


def sandbox_preset() -> dict[str, str]:
    """The local stack's sandbox URLs and host table (stack.json), to fill the form with."""
    try:
        stack = read_stack_file(HomeFolder.from_env())
    except StackFileUnreadable:
        return {}
    if stack is None:
        return {}
    return {
        "visma_token_url": stack.visma_token_url,
        "visma_api_base_url": stack.visma_api_url,
        "basware_hosts": stack.basware_hosts.model_dump_json(),
        "basware_region": "EU",
    }


# --- pages --------------------------------------------------------------------------------


@router.get("/connections", include_in_schema=False)
async def connections_page(request: Request, session: Viewer) -> Response:
    connections = await state_of(request).connections().list()
    return page(
        request,
        "connections.html",
        {
            "connections": [connection_view(c) for c in connections],
            "notice": request.query_params.get("notice"),
        },
    )


@router.get("/connections/new", include_in_schema=False)
async def new_connection_page(request: Request, session: Admin) -> Response:
    preset = sandbox_preset() if request.query_params.get("preset") == "sandbox" else {}
    return page(request, "connection_new.html", {"values": preset, "error": None})


@router.post("/connections", include_in_schema=False)
async def add_connection_form(request: Request, session: Admin) -> Response:
    values = _form_values(await request.form())
    # Whatever goes wrong, the form comes back filled in, but never with a secret.
    kept = {k: v for k, v in values.items() if "secret" not in k and k != "csrf_token"}
    try:
        form = ConnectionForm.model_validate(values)
        added = await add_connection(request, session, form)
    except ValidationError as error:
        message = ConnectionInvalid.from_validation("the form", error).args[0]
        return page(request, "connection_new.html", {"values": kept, "error": message}, status=400)
    except BadInput as error:
        return page(
            request, "connection_new.html", {"values": kept, "error": error.detail}, status=400
        )
    return RedirectResponse(
        f"/connections/{added.name}?notice=Added {added.name}: ping it to see if it fits", 303
    )


@router.get("/connections/{name}", include_in_schema=False)
async def connection_page(request: Request, name: str, session: Viewer) -> Response:
    connection = connection_view(await _get(request, name))
    return page(
        request,
        "connection.html",
        {
            "connection": connection,
            "coding_targets": list(SegmentTarget),
            "notice": request.query_params.get("notice"),
            "error": None,
        },
    )


async def _detail_with_error(request: Request, name: str, error: BadInput) -> Response:
    connection = connection_view(await _get(request, name))
    return page(
        request,
        "connection.html",
        {
            "connection": connection,
            "coding_targets": list(SegmentTarget),
            "notice": None,
            "error": error.detail,
        },
        status=400,
    )


@router.post("/connections/{name}/schedule", include_in_schema=False)
async def schedule_form(request: Request, name: str, session: Operator) -> Response:
    form = await request.form()
    try:
        try:
            mode, value = form.get("mode"), form.get("value")
            parsed = ScheduleForm.model_validate(
                {
                    "entity": form.get("entity"),
                    "every": value if mode == "every" else None,
                    "cron": value if mode == "cron" else None,
                    "default": mode == "default",
                }
            )
        except ValidationError as error:
            raise BadInput(ConnectionInvalid.from_validation("schedule", error).args[0]) from None
        await change_schedule(request, session, name, parsed)
    except BadInput as error:
        return await _detail_with_error(request, name, error)
    return RedirectResponse(f"/connections/{name}?notice=Schedule of {parsed.entity} saved", 303)


@router.post("/connections/{name}/coding", include_in_schema=False)
async def coding_form(request: Request, name: str, session: Operator) -> Response:
    form = await request.form()
    try:
        try:
            fields = {k: form.get(k) for k in ("dimension_id", "cost_center", "project")}
            dim_codes = {
                n: value
                for n in range(1, 11)
                if isinstance(value := form.get(f"dim_code_{n}"), str) and value.strip()
            }
            parsed = CodingForm.model_validate({**fields, "dim_codes": dim_codes})
        except ValidationError as error:
            raise BadInput(ConnectionInvalid.from_validation("coding", error).args[0]) from None
        change = await change_coding(request, session, name, parsed)
    except BadInput as error:
        return await _detail_with_error(request, name, error)
    said = f"{change.summary()}; {change.resent} records re-sent with the new coding"
    return RedirectResponse(f"/connections/{name}?notice={quote(said)}", 303)


@router.post("/connections/{name}/enabled", include_in_schema=False)
async def enabled_form(request: Request, name: str, session: Admin) -> Response:
    enabled = (await request.form()).get("enabled") == "true"
    await set_enabled(request, session, name, enabled)
    said = "enabled" if enabled else "disabled: it is not polled"
    return RedirectResponse(f"/connections/{name}?notice={name} {said}", 303)


@router.post("/connections/{name}/remove", include_in_schema=False)
async def remove_form(request: Request, name: str, session: Admin) -> Response:
    await remove_connection(request, session, name)
    return RedirectResponse(f"/connections?notice=Removed {name} and its secrets", 303)


# --- API ----------------------------------------------------------------------------------


@router.get("/api/connections", response_model=list[ConnectionView], tags=["connections"])
async def list_connections_api(request: Request, session: Viewer) -> list[ConnectionView]:
    """Every connection, without its secrets (only which are set)."""
    return [connection_view(c) for c in await state_of(request).connections().list()]


@router.post(
    "/api/connections", response_model=ConnectionView, status_code=201, tags=["connections"]
)
async def add_connection_api(
    request: Request, form: ConnectionForm, session: Admin
) -> ConnectionView:
    """Adds a connection once its Basware region is found and a ping of both systems
    passes (admin)."""
    return connection_view(await add_connection(request, session, form))


@router.get("/api/connections/{name}", response_model=ConnectionView, tags=["connections"])
async def connection_api(request: Request, name: str, session: Viewer) -> ConnectionView:
    return connection_view(await _get(request, name))


@router.put(
    "/api/connections/{name}/schedules", response_model=ConnectionView, tags=["connections"]
)
async def schedule_api(
    request: Request, name: str, form: ScheduleForm, session: Operator
) -> ConnectionView:
    """Sets one entity's poll schedule (operator); visma-reader applies it on its next cycle."""
    return connection_view(await change_schedule(request, session, name, form))


class CodingAnswer(BaseModel):
    connection: ConnectionView
    # How many records were sent again with the new coding.
    resent: int


@router.put("/api/connections/{name}/coding", response_model=CodingAnswer, tags=["connections"])
async def coding_api(
    request: Request, name: str, form: CodingForm, session: Operator
) -> CodingAnswer:
    """Sets the coding layout (operator): checked against the Visma company, and what it
    recodes is sent again, as `mlconnector connections coding` does."""
    change = await change_coding(request, session, name, form)
    return CodingAnswer(connection=connection_view(change.after), resent=change.resent)


@router.put("/api/connections/{name}/enabled", response_model=ConnectionView, tags=["connections"])
async def enabled_api(
    request: Request, name: str, form: EnabledForm, session: Admin
) -> ConnectionView:
    """Enables or disables polling of a connection (admin)."""
    return connection_view(await set_enabled(request, session, name, form.enabled))


@router.delete("/api/connections/{name}", response_model=Notice, tags=["connections"])
async def remove_api(request: Request, name: str, session: Admin) -> Notice:
    """Removes a connection and its secrets (admin)."""
    await remove_connection(request, session, name)
    return Notice(detail=f"removed {name}")

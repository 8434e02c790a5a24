"""Users (admin): list, add, remove. The first admin comes from `mlconnector users add`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, SecretStr, ValidationError

from console.access import Role
from console.actions import operator_action
from console.passwords import WeakPassword
from console.users import (
    Session,
    User,
    UserExists,
    UserName,
    UserNotFound,
    add_user,
    count_admins,
    list_users,
    remove_user,
)
from console.web import Access, BadInput, Notice, Refused, bad_input, page, state_of

router = APIRouter()
Admin = Annotated[Session, Depends(Access(Role.ADMIN))]


class UserForm(BaseModel):
    name: UserName
    role: Role
    password: SecretStr


async def create_user(request: Request, session: Session, form: UserForm) -> User:
    state = state_of(request)
    try:
        async with state.pool.acquire() as conn, conn.transaction():
            user = await add_user(conn, form.name, form.role, form.password)
            await state.audit_in(
                conn,
                operator_action(
                    session.user.name,
                    "user added",
                    role=session.user.role,
                    target=form.name,
                    detail=f"role {form.role.value}",
                ),
            )
    except (UserExists, WeakPassword) as error:
        raise BadInput(str(error)) from None
    return user


async def delete_user(request: Request, session: Session, name: str) -> None:
    state = state_of(request)
    if name == session.user.name:
        raise BadInput("you cannot remove yourself")
    async with state.pool.acquire() as conn, conn.transaction():
        users = {u.name: u for u in await list_users(conn)}
        if name not in users:
            raise Refused(404, str(UserNotFound(name)))
        if users[name].role is Role.ADMIN and await count_admins(conn) == 1:
            raise BadInput("the last admin cannot be removed")
        await remove_user(conn, name)
        await state.audit_in(
            conn,
            operator_action(session.user.name, "user removed", role=session.user.role, target=name),
        )


async def _with_error(request: Request, error: BadInput) -> Response:
    users = await list_users(state_of(request).pool)
    context = {"users": users, "error": error.detail, "notice": None}
    return page(request, "users.html", context, status=400)


@router.get("/users", include_in_schema=False)
async def users_page(request: Request, session: Admin) -> Response:
    users = await list_users(state_of(request).pool)
    return page(
        request,
        "users.html",
        {"users": users, "error": None, "notice": request.query_params.get("notice")},
    )


@router.post("/users", include_in_schema=False)
async def add_user_form(request: Request, session: Admin) -> Response:
    form = await request.form()
    try:
        try:
            parsed = UserForm.model_validate(dict(form.items()))
        except ValidationError as error:
            raise bad_input("the new user", error) from None
        user = await create_user(request, session, parsed)
    except BadInput as error:
        return await _with_error(request, error)
    return RedirectResponse(f"/users?notice=Added {user.name} ({user.role.value})", 303)


@router.post("/users/{name}/remove", include_in_schema=False)
async def remove_user_form(request: Request, name: str, session: Admin) -> Response:
    try:
        await delete_user(request, session, name)
    except BadInput as error:
        return await _with_error(request, error)
    return RedirectResponse(f"/users?notice=Removed {name}", 303)


@router.get("/api/users", response_model=list[User], tags=["users"])
async def users_api(request: Request, session: Admin) -> list[User]:
    """The console's users and their roles (admin)."""
    return await list_users(state_of(request).pool)


@router.post("/api/users", response_model=User, status_code=201, tags=["users"])
async def add_user_api(request: Request, form: UserForm, session: Admin) -> User:
    """Adds a user with a role and a password of at least 10 characters (admin)."""
    return await create_user(request, session, form)


@router.delete("/api/users/{name}", response_model=Notice, tags=["users"])
async def remove_user_api(request: Request, name: str, session: Admin) -> Notice:
    await delete_user(request, session, name)
    return Notice(detail=f"removed {name}")

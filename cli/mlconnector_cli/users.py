"""`mlconnector users add | list | remove`: the console's users, the first admin included.

Passwords are read from a hidden prompt (asked twice) or from stdin, never from the command
line. Every change is an operator action in the audit log, by `cli:<login name>`.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from pydantic import SecretStr

from console.access import Role
from mlconnector_cli.connections import DEFAULT_DATABASE_URL, DatabaseUrl, fail, run_checked

app = typer.Typer(
    name="users",
    help="The console's users: add one (the first admin too), list them, remove one.",
    no_args_is_help=True,
)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _password(from_stdin: bool) -> SecretStr:
    if from_stdin:
        return SecretStr(sys.stdin.readline().rstrip("\n"))
    if not sys.stdin.isatty():
        fail("stdin is not a terminal, so there is no hidden prompt: use --password-from-stdin")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        fail("the two passwords differ")
    return SecretStr(first)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The user name to log in with.")],
    role: Annotated[Role, typer.Option(help="viewer reads; operator replays; admin manages.")],
    password_from_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Add a console user. The first admin is made this way: the console has no default one."""
    import asyncpg
    from pydantic import TypeAdapter, ValidationError

    from console.actions import operator_action, record_action
    from console.passwords import WeakPassword
    from console.users import UserExists, UserName, add_user, migrate

    try:
        TypeAdapter(UserName).validate_python(name)
    except ValidationError:
        fail(f"{name!r} is not a user name: letters, digits and . _ @ - (at most 63)")
    password = _password(password_from_stdin)

    async def work() -> None:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            await migrate(conn)
            async with conn.transaction():
                await add_user(conn, name, role, password)
                await record_action(
                    conn,
                    operator_action(_actor(), "user added", target=name, detail=f"role {role}"),
                )
        finally:
            await conn.close()

    try:
        run_checked(work, database_url)
    except (UserExists, WeakPassword) as error:
        fail(str(error))
    typer.echo(f"Added {name} ({role.value}). Log in to the console with it.")


@app.command("list")
def list_users(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """List the console's users and their roles."""
    import asyncpg

    from console.users import User, list_users, migrate

    async def work() -> list[User]:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            await migrate(conn)
            return await list_users(conn)
        finally:
            await conn.close()

    users = run_checked(work, database_url)
    if not users:
        typer.echo("No users. Add the first admin with: mlconnector users add NAME --role admin")
    for user in users:
        locked = f" (locked until {user.locked_until:%H:%M})" if user.locked_until else ""
        typer.echo(f"{user.name}: {user.role.value}{locked}")


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The user to remove.")],
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Remove a console user; their logins end at once."""
    import asyncpg

    from console.actions import operator_action, record_action
    from console.users import UserNotFound, migrate, remove_user

    async def work() -> None:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            await migrate(conn)
            async with conn.transaction():
                await remove_user(conn, name)
                await record_action(conn, operator_action(_actor(), "user removed", target=name))
        finally:
            await conn.close()

    try:
        run_checked(work, database_url)
    except UserNotFound as error:
        fail(str(error))
    typer.echo(f"Removed {name}.")

"""`mlconnector database setup`: the database's roles, its migrations applied by the owner,
and each service's grants (mlconnector.database_roles), run by the database's administrator
before the services start (docker-compose's `database-setup` job; `mlconnector run` does the
same for its home by itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlconnector_cli.connections import DEFAULT_DATABASE_URL, DatabaseUrl, run_checked

app = typer.Typer(
    name="database",
    help="Set up the database's roles, migrations and grants (as its administrator).",
    no_args_is_help=True,
)


@app.command()
def setup(
    passfiles: Annotated[
        Path,
        typer.Option(
            envvar="MLC_DATABASE_PASSFILES",
            help="The folder of each role's password file, <service>.pgpass; missing ones are "
            "made with a new password.",
        ),
    ],
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Make (or update) the owner and each service's role, give every table to the owner,
    apply every pending migration as the owner and grant each role what its service needs.

    DATABASE_URL must be a superuser of the database. Idempotent: run it before every start."""
    import asyncpg

    from mlconnector.database_roles import OWNER, Passfiles, role_name, set_up_database

    async def work() -> tuple[str, dict[str, list[str]]]:
        admin = await asyncpg.connect(database_url, timeout=10)
        try:
            name: str = await admin.fetchval("SELECT current_database()")
            passwords = Passfiles(passfiles).ensure(name)
            return name, await set_up_database(admin, passwords)
        finally:
            await admin.close()

    name, applied = run_checked(work, database_url)
    for owner, versions in applied.items():
        if versions:
            typer.echo(f"{owner}: applied {', '.join(versions)}")
    typer.echo(f"database {name} is set up; its tables belong to {role_name(name, OWNER)}")

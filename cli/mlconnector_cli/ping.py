"""`mlconnector ping [connection]`: do the credentials work against the real systems?"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

import typer

from mlconnector.connection_checks import PingReport
from mlconnector.connections import Connection
from mlconnector_cli.connections import DEFAULT_DATABASE_URL, DatabaseUrl, run_checked


def render(report: PingReport) -> str:
    lines = [f"{report.connection} (Visma company {report.tenant})"]
    for check in report.checks:
        verdict = "ok  " if check.ok else "FAIL"
        why = f"{check.problem}: " if check.problem else ""
        lines.append(f"  {verdict}  {check.system:<8} {check.step:<6} {why}{check.detail}")
    failed = [c for c in report.checks if not c.ok]
    if failed:
        said = "; ".join(f"{c.problem} ({c.system} {c.step})" for c in failed)
        lines.append(f"  {report.connection} does not work: {said}")
    else:
        lines.append(f"  {report.connection} works.")
    return "\n".join(lines)


def ping(
    name: Annotated[
        str | None, typer.Argument(help="The connection to check; default every connection.")
    ] = None,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Fetch a token from Visma and Basware, make one harmless read on each, compare clocks.

    Names each failure: wrong secret, company id or region, clock skew, unreachable host.

    Exits 1 if anything fails.

    Uses the connection in the environment (VISMA_CLIENT_ID, ...) if any, else the store.
    """
    from mlconnector.connection_checks import ping as ping_connection
    from mlconnector.connection_store import open_connection_source

    async def work() -> Sequence[PingReport]:
        connections: Sequence[Connection]
        async with open_connection_source(database_url) as source:
            connections = [await source.get(name)] if name else await source.list()
        # Side by side: one connection's slow or dead host does not hold up the others.
        return await asyncio.gather(*(ping_connection(c) for c in connections))

    reports = run_checked(work, database_url)
    if not reports:
        typer.echo("No connections to ping. Add one with: mlconnector connections add --help")
        raise typer.Exit(1)
    typer.echo("\n".join(render(r) for r in reports))
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)

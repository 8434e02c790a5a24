"""`mlconnector`: the product's one command-line entry point. Every command has --help."""

from __future__ import annotations

import typer

from mlconnector_cli.audit import register as register_audit_commands
from mlconnector_cli.connections import DEFAULT_DATABASE_URL, DatabaseUrl, run_app
from mlconnector_cli.connections import app as connections_app
from mlconnector_cli.database import app as database_app
from mlconnector_cli.keys import app as keys_app
from mlconnector_cli.ping import ping
from mlconnector_cli.reconcile import reconcile
from mlconnector_cli.users import app as users_app

app = typer.Typer(
    name="mlconnector",
    help="Keeps Basware in step with Visma.net ERP: run the pipeline, manage connections, "
    "replay failures and trace records.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def find_stack(ctx: typer.Context) -> None:
    """Before any command but `run`: the running stack, when the environment names none."""
    from mlconnector.home import StackFileUnreadable
    from mlconnector_cli.discovery import use_running_stack

    if ctx.invoked_subcommand == "run":
        return
    try:
        found = use_running_stack()
    except StackFileUnreadable as error:
        typer.echo(f"warning: {error}", err=True)
        return
    if found is not None:
        typer.echo(found, err=True)


@app.command()
def run(
    sync_once: bool = typer.Option(
        False, "--sync-once", help="Exit 0 once every seeded record is delivered."
    ),
    timeout: float = typer.Option(300.0, help="With --sync-once: give up after this many seconds."),
    suppliers: int = typer.Option(300, help="Demo suppliers seeded in the Visma sandbox."),
    purchase_orders: int = typer.Option(600, help="Demo purchase orders seeded."),
    invoices: int = typer.Option(600, help="Demo supplier invoices seeded."),
    writers: int = typer.Option(
        1, min=1, help="basware-writer processes in one consumer group (they split the work)."
    ),
    reset: bool = typer.Option(
        False, "--reset", help="Start from nothing: delete the home folder and its database."
    ),
    demo_connection: bool = typer.Option(
        True, help="Store the demo connection in a new home; without it, add one in the console."
    ),
) -> None:
    """Run the whole pipeline on embedded defaults and show records flowing.

    Everything lasts in the home folder (MLC_HOME, default .mlconnector/): a second run
    resumes where the first stopped. The seed options apply to a new home only."""
    import asyncio

    from pydantic import ValidationError

    from mlconnector.home import HomeFolder
    from mlconnector_cli.ports import StackPorts
    from mlconnector_cli.run import RunOptions, reset_home, run_pipeline

    options = RunOptions(
        sync_once=sync_once,
        timeout=timeout,
        suppliers=suppliers,
        purchase_orders=purchase_orders,
        invoices=invoices,
        writers=writers,
        demo_connection=demo_connection,
    )
    home = HomeFolder.from_env()
    try:
        ports = StackPorts()
        if reset:
            asyncio.run(reset_home(home))
        code = asyncio.run(run_pipeline(options, home, ports))
    except ValidationError as exc:
        typer.echo(f"mlconnector run: a port setting is wrong: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    except (RuntimeError, TimeoutError, OSError) as exc:
        # A port in use, a service or sandbox that would not start: its own words.
        typer.echo(f"mlconnector run failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def status(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Every service up or down, consumer lag, and where each connection's sync stands.

    Reads the running stack's stack.json (services) and PostgreSQL (records, cursors)."""
    from mlconnector.home import HomeFolder, StackFileUnreadable, read_stack_file
    from mlconnector.sync_status import gather_status
    from mlconnector_cli.audit import run_audit
    from mlconnector_cli.status import render_status

    try:
        stack = read_stack_file(HomeFolder.from_env())
    except StackFileUnreadable:
        stack = None  # already said by the callback
    services = stack.services if stack else []
    report = run_audit(database_url, lambda: gather_status(database_url, services))
    typer.echo(render_status(report))


app.add_typer(connections_app)
app.add_typer(keys_app)
app.add_typer(users_app)
app.add_typer(database_app)
app.command()(ping)
app.command()(reconcile)
register_audit_commands(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()

"""`mlconnector connections add | list | remove | schedule`: the stored connections.

Secrets are read from a hidden prompt or from stdin (--secrets-from-stdin), never from the
command line, where they would land in shell history and the process list.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from mlconnector.basware import (
    BaswareCredentials,
    BaswareEnvironment,
    BaswareHosts,
    BaswareRegion,
)
from mlconnector.connections import ALL_ENTITIES, Connection, ConnectionInvalid
from mlconnector.contracts import Entity
from mlconnector.schedule import CronSchedule, IntervalSchedule, parse_every
from mlconnector.settings import DatabaseSettings
from mlconnector.vault import Keyring
from mlconnector.visma import READ_SCOPE, VismaCredentials, VismaEndpoints

app = typer.Typer(
    name="connections",
    help="Add, list and remove connections (a Visma company joined to a Basware tenant) "
    "and set their poll schedules.",
    no_args_is_help=True,
)

T = TypeVar("T")

DatabaseUrl = Annotated[
    str,
    typer.Option(
        envvar="DATABASE_URL",
        help="The PostgreSQL that stores connections.",
        show_default=False,
    ),
]
DEFAULT_DATABASE_URL = DatabaseSettings().database_url


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def run_checked(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs the coroutine; a known failure becomes one plain line on stderr and exit code 1."""
    import asyncpg

    from mlconnector.basware import RegionUnresolved
    from mlconnector.connection_store import ConnectionExists
    from mlconnector.connections import ConnectionNotFound
    from mlconnector.vault import VaultError

    try:
        return asyncio.run(work())
    except (
        ConnectionExists,
        ConnectionNotFound,
        ConnectionInvalid,
        RegionUnresolved,
        VaultError,
        OSError,
        asyncpg.PostgresError,
    ) as error:
        fail(str(error))


def load_keyring() -> Keyring:
    from mlconnector.vault import VaultError

    try:
        return Keyring.from_env()
    except VaultError as error:
        fail(str(error))


class ProvidedSecrets(BaseModel):
    """The secrets of one connection, as typed at the prompt or piped in."""

    model_config = ConfigDict(extra="forbid")

    visma_client_secret: SecretStr
    basware_client_secret: SecretStr
    basware_webhook_secret: SecretStr | None = None
    visma_webhook_secret: SecretStr | None = None


SECRET_ORDER = tuple(ProvidedSecrets.model_fields)


def secrets_from_text(text: str) -> ProvidedSecrets:
    """A JSON object with the field names, or one secret per line in SECRET_ORDER."""
    try:
        if text.lstrip().startswith("{"):
            return ProvidedSecrets.model_validate_json(text)
        lines = [line.strip() for line in text.splitlines()]
        values = {k: v for k, v in zip(SECRET_ORDER, lines, strict=False) if v}
        return ProvidedSecrets.model_validate(values)
    except ValidationError as error:
        raise ConnectionInvalid.from_validation("the secrets on stdin", error) from None


def secrets_from_prompt() -> ProvidedSecrets:
    def ask(label: str, required: bool) -> str:
        value: str = typer.prompt(
            label, hide_input=True, default=None if required else "", show_default=False
        )
        return value

    return ProvidedSecrets(
        visma_client_secret=SecretStr(ask("Visma client secret", True)),
        basware_client_secret=SecretStr(ask("Basware client secret", True)),
        basware_webhook_secret=SecretStr(s)
        if (s := ask("Basware webhook secret", False))
        else None,
        visma_webhook_secret=SecretStr(s) if (s := ask("Visma webhook secret", False)) else None,
    )


def _host_table(path: Path | None, environment: BaswareEnvironment) -> BaswareHosts | None:
    if path is not None:
        try:
            return BaswareHosts.model_validate_json(path.read_text())
        except ValidationError as error:
            raise ConnectionInvalid.from_validation(f"the host table {path}", error) from None
    # The public production hosts are the model's default; only a change is stored.
    return (
        None if environment is BaswareEnvironment.PRODUCTION else BaswareHosts.public(environment)
    )


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A short name for the connection, e.g. acme-no.")],
    visma_client_id: Annotated[str, typer.Option(help="Visma Developer Portal client id.")],
    visma_tenant_id: Annotated[
        str, typer.Option(help="The Visma company's tenant id (not the customer's).")
    ],
    visma_company_id: Annotated[
        str, typer.Option(help="The Visma company id: the connection's tenant in event keys.")
    ],
    basware_client_id: Annotated[str, typer.Option(help="Basware API client id.")],
    basware_region: Annotated[
        BaswareRegion | None,
        typer.Option(help="Pin the Basware region; by default it is found from the credentials."),
    ] = None,
    basware_environment: Annotated[
        BaswareEnvironment, typer.Option(help="Basware production or test hosts.")
    ] = BaswareEnvironment.PRODUCTION,
    basware_hosts: Annotated[
        Path | None,
        typer.Option(help="A JSON host table (BaswareHosts) replacing the public hosts."),
    ] = None,
    basware_company_code: Annotated[
        str | None,
        typer.Option(help="The Basware company code vendors, orders and invoices belong to."),
    ] = None,
    basware_receiving_email: Annotated[
        str | None,
        typer.Option(help="The Basware SmartPDF inbox address that receives invoice uploads."),
    ] = None,
    visma_scope: Annotated[
        list[str] | None, typer.Option(help="Visma scope to ask for (repeat for several).")
    ] = None,
    visma_token_url: Annotated[str, typer.Option(help="Visma Connect token URL.")] = (
        VismaEndpoints().token_url
    ),
    visma_api_base_url: Annotated[str, typer.Option(help="Visma.net ERP API base URL.")] = (
        VismaEndpoints().api_base_url
    ),
    entity: Annotated[
        list[Entity] | None, typer.Option(help="An entity to sync (repeat); default all.")
    ] = None,
    write_back: Annotated[bool, typer.Option(help="Write Basware outcomes back to Visma.")] = False,
    secrets_from_stdin: Annotated[
        bool,
        typer.Option(
            help="Read the secrets from stdin: a JSON object (visma_client_secret, "
            "basware_client_secret, basware_webhook_secret, visma_webhook_secret) or those "
            "values one per line. Without it, they are asked for at a hidden prompt."
        ),
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(help="Store without asking Basware for the region (needs --basware-region)."),
    ] = False,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Add a connection. The Basware region is found from the credentials and checked now."""
    from mlconnector.connection_checks import resolve_region
    from mlconnector.connection_store import ConnectionStore

    if offline and basware_region is None:
        fail("--offline needs --basware-region: without asking Basware the region is unknown")
    keyring = load_keyring()
    secrets = secrets_from_text(sys.stdin.read()) if secrets_from_stdin else secrets_from_prompt()

    async def work() -> Connection:
        hosts = _host_table(basware_hosts, basware_environment)
        credentials = BaswareCredentials(
            client_id=basware_client_id,
            client_secret=secrets.basware_client_secret,
            region=basware_region,
        )
        if not offline:
            region = await resolve_region(credentials, hosts or BaswareHosts.public())
            credentials = credentials.model_copy(update={"region": region})
        try:
            connection = Connection(
                name=name,
                visma=VismaCredentials(
                    client_id=visma_client_id,
                    client_secret=secrets.visma_client_secret,
                    tenant_id=visma_tenant_id,
                    company_id=visma_company_id,
                    scopes=tuple(visma_scope or (READ_SCOPE,)),
                ),
                visma_endpoints=VismaEndpoints(
                    token_url=visma_token_url, api_base_url=visma_api_base_url
                ),
                visma_webhook_secret=secrets.visma_webhook_secret,
                basware=credentials,
                basware_hosts=hosts,
                basware_webhook_secret=secrets.basware_webhook_secret,
                basware_company_code=basware_company_code,
                basware_receiving_email=basware_receiving_email,
                entities=tuple(e for e in ALL_ENTITIES if e in (entity or ALL_ENTITIES)),
                write_back=write_back,
            )
        except ValidationError as error:
            raise ConnectionInvalid.from_validation(f"connection {name!r}", error) from None
        async with ConnectionStore.open(database_url, keyring) as store:
            await store.add(connection)
        return connection

    added = run_checked(work)
    region = added.basware.region.value if added.basware.region else "?"
    typer.echo(
        f"Added {added.name}: Visma company {added.tenant} <-> Basware region {region}. "
        f"Check it with: mlconnector ping {added.name}"
    )


def _schedules_text(connection: Connection) -> str:
    return (
        ", ".join(
            f"{e.value} {connection.schedules[e]}"
            for e in ALL_ENTITIES
            if e in connection.schedules
        )
        or "default"
    )


@app.command("list")
def list_connections(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """List the stored connections (never their secrets)."""
    from mlconnector.connection_store import ConnectionStore

    keyring = load_keyring()

    async def work() -> list[Connection]:
        async with ConnectionStore.open(database_url, keyring) as store:
            return list(await store.list())

    connections = run_checked(work)
    if not connections:
        typer.echo("No connections. Add one with: mlconnector connections add --help")
        return
    for c in connections:
        region = c.basware.region.value if c.basware.region else "detect"
        typer.echo(
            f"{c.name}: Visma company {c.tenant} (client {c.visma.client_id}, tenant "
            f"{c.visma.tenant_id}) <-> Basware {region} (client {c.basware.client_id}); "
            f"entities {', '.join(c.entities)}; write-back {'on' if c.write_back else 'off'}; "
            f"schedules {_schedules_text(c)}"
        )


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The connection to remove.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Remove a connection and its secrets."""
    from mlconnector.connection_store import ConnectionStore

    if not yes:
        typer.confirm(f"Remove connection {name} and its stored secrets?", abort=True)
    keyring = load_keyring()

    async def work() -> None:
        async with ConnectionStore.open(database_url, keyring) as store:
            await store.remove(name)

    run_checked(work)
    typer.echo(f"Removed {name}.")


@app.command()
def schedule(
    name: Annotated[str, typer.Argument(help="The connection.")],
    entity: Annotated[Entity, typer.Argument(help="The entity whose polls to schedule.")],
    every: Annotated[
        str | None, typer.Option(help="An interval: 30s, 5m, 2h, 1d or plain seconds.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help='A cron expression in UTC, e.g. "*/5 * * * *".')
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Go back to the reader's default interval.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Set how often an entity is polled. visma-reader applies it on its next cycle."""
    from mlconnector.connection_store import ConnectionStore

    if sum((every is not None, cron is not None, default)) != 1:
        fail("give exactly one of --every, --cron or --default")
    try:
        chosen: IntervalSchedule | CronSchedule | None = (
            parse_every(every)
            if every is not None
            else CronSchedule(expression=cron)
            if cron is not None
            else None
        )
    except ValidationError as error:
        fail(ConnectionInvalid.from_validation("schedule", error).args[0])
    except ValueError as error:
        fail(str(error))
    keyring = load_keyring()

    async def work() -> Connection:
        async with ConnectionStore.open(database_url, keyring) as store:
            return await store.update_schedule(name, entity, chosen)

    updated = run_checked(work)
    typer.echo(f"{updated.name}: schedules {_schedules_text(updated)}")

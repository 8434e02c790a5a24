"""`mlconnector connections add | list | remove | schedule`: the stored connections.

Secrets are read from a hidden prompt or from stdin (--secrets-from-stdin), never from the
command line, where they would land in shell history and the process list.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

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
from mlconnector.home import HomeFolder, StackFile, read_stack_file
from mlconnector.mapping import CodingLayout
from mlconnector.schedule import CronSchedule, IntervalSchedule, parse_every
from mlconnector.settings import DatabaseSettings
from mlconnector.topics import Topic
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


class OptionFileUnreadable(ValueError):
    """A file named by an option cannot be read as text."""


def read_option_file(path: Path, option: str) -> str:
    try:
        return path.read_bytes().decode()
    except UnicodeDecodeError:
        raise OptionFileUnreadable(f"{option} {path} is not UTF-8 text") from None
    except OSError as error:
        raise OptionFileUnreadable(
            f"{option} {path} cannot be read: {error.strerror or error}"
        ) from None


def database_location(database_url: str) -> str:
    """The database named without user or password: error messages must carry no secret."""
    parts = urlsplit(database_url)
    return f"{parts.netloc.rsplit('@', 1)[-1] or 'localhost'}{parts.path}"


# One host of a PostgreSQL URL's host list: a name or [IPv6 address], and a numeric port.
_DATABASE_HOST = re.compile(r"^(\[[^\]]*\]|[^:\[\]]*)(:\d{1,5})?$")


def database_url_problem(database_url: str) -> str | None:
    """What keeps DATABASE_URL from being a PostgreSQL URL (asyncpg fails on it with a bare
    ValueError, or a message that does not say which setting), named without repeating the
    URL, which may hold a password."""
    form = "postgresql://user@host:port/database"
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres"):
        return f"the database URL is not a PostgreSQL URL ({form})"
    hosts = parts.netloc.rsplit("@", 1)[-1]
    if not all(_DATABASE_HOST.match(host) for host in hosts.split(",")):
        return f"the database URL has a port that is not a number ({form})"
    return None


def one_line(error: Exception, database_url: str | None = None) -> str | None:
    """What a known failure says on one line, naming what is wrong and never a secret; None
    for anything else, which is a bug and keeps its traceback."""
    import asyncpg
    from aiokafka.errors import KafkaError

    from mlconnector.basware import RegionUnresolved
    from mlconnector.connection_store import ConnectionExists
    from mlconnector.connections import ConnectionNotFound
    from mlconnector.home import StackFileUnreadable
    from mlconnector.settings import KafkaSettings
    from mlconnector.vault import VaultError

    said_in_full = (
        ConnectionExists,
        ConnectionNotFound,
        ConnectionInvalid,
        OptionFileUnreadable,
        RegionUnresolved,
        StackFileUnreadable,
        VaultError,
    )
    if isinstance(error, said_in_full):
        return str(error)
    if isinstance(error, KafkaError):
        return f"Kafka at {KafkaSettings().bootstrap_servers}: {error}"
    if database_url is not None:
        where = database_location(database_url)
        # Checked only now: a command that never connects does not mind a malformed URL.
        if isinstance(error, ValueError | asyncpg.InterfaceError) and (
            problem := database_url_problem(database_url)
        ):
            return problem
        if isinstance(error, asyncpg.InvalidCatalogNameError):
            return f"the database {where} does not exist"
        if isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
            return f"PostgreSQL at {where}: {error}"
        if isinstance(error, OSError):
            # Refused, unknown host, timed out: the connection is all this command makes.
            reason = error.strerror or str(error) or "timed out"
            return f"PostgreSQL at {where} does not answer: {reason}"
    if isinstance(error, asyncpg.PostgresError):
        return str(error)
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return None


@contextlib.contextmanager
def reported_in_one_line(database_url: str | None = None) -> Iterator[None]:
    """A known failure becomes one plain line on stderr and exit code 1."""
    try:
        yield
    except Exception as error:
        line = one_line(error, database_url)
        if line is None:
            raise
        fail(line)


def run_checked(work: Callable[[], Coroutine[Any, Any, T]], database_url: str | None = None) -> T:
    """Runs the coroutine; a known failure becomes one plain line on stderr and exit code 1.
    With the database URL, a database failure names the database."""
    with reported_in_one_line(database_url):
        return asyncio.run(work())


def run_app(app: typer.Typer) -> NoReturn:
    """Runs the command line. A usage mistake is one line too, where click would draw a box
    of usage and hints; a known failure escaping a command is one line as well."""
    try:
        with reported_in_one_line():
            code = app(standalone_mode=False)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    except typer.TyperException as error:
        # Typer tells this one by name too: the class is in its private copy of click.
        if type(error).__name__ == "NoArgsIsHelpError":
            sys.exit(error.exit_code)  # the help is printed already
        ctx = getattr(error, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        # Click lists choices one per line; the line stays one.
        said = " ".join(error.format_message().split())
        typer.secho(f"error: {said}{hint}", err=True, fg=typer.colors.RED)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def load_keyring() -> Keyring:
    with reported_in_one_line():
        return Keyring.from_env()


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
    if not text.strip():
        raise ConnectionInvalid(
            "no secrets on stdin: pipe a JSON object or one secret per line "
            f"({', '.join(SECRET_ORDER)})"
        )
    try:
        if text.lstrip().startswith("{"):
            return ProvidedSecrets.model_validate_json(text)
        lines = [line.strip() for line in text.splitlines()]
        if any(lines[len(SECRET_ORDER) :]):
            raise ConnectionInvalid(
                f"the secrets on stdin: more than {len(SECRET_ORDER)} lines; one secret per "
                f"line, in the order {', '.join(SECRET_ORDER)}"
            )
        values = {k: v for k, v in zip(SECRET_ORDER, lines, strict=False) if v}
        return ProvidedSecrets.model_validate(values)
    except ValidationError as error:
        raise ConnectionInvalid.from_validation("the secrets on stdin", error) from None


def read_secrets_from_stdin() -> ProvidedSecrets:
    try:
        text = sys.stdin.buffer.read().decode()
    except UnicodeDecodeError:
        raise ConnectionInvalid("the secrets on stdin are not UTF-8 text") from None
    return secrets_from_text(text)


def secrets_from_prompt() -> ProvidedSecrets:
    if not sys.stdin.isatty():
        # getpass would fall back to echoing the secrets, or abort on the end of the input.
        raise ConnectionInvalid(
            "stdin is not a terminal, so there is no hidden prompt for the secrets: "
            "pipe them in with --secrets-from-stdin"
        )

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


def host_table(
    path: Path | None, stack: StackFile | None, environment: BaswareEnvironment
) -> BaswareHosts | None:
    """The hosts of --basware-hosts, else of the sandbox, else the environment's public ones."""
    if path is not None:
        text = read_option_file(path, "--basware-hosts")
        try:
            return BaswareHosts.model_validate_json(text)
        except ValidationError as error:
            raise ConnectionInvalid.from_validation(f"the host table {path}", error) from None
    if stack is not None:
        return stack.basware_hosts
    # The public production hosts are the model's default; only a change is stored.
    return (
        None if environment is BaswareEnvironment.PRODUCTION else BaswareHosts.public(environment)
    )


class ConnectionIds(BaseModel):
    """The ids a connection needs besides its secrets."""

    visma_client_id: str
    visma_tenant_id: str
    visma_company_id: str
    basware_client_id: str


class SandboxDemo(ConnectionIds):
    """The sandboxes' demo clients and company, as `mlconnector run` seeds them."""

    model_config = ConfigDict(extra="ignore")

    basware_company_code: str
    basware_receiving_email: str


def sandbox_demo() -> SandboxDemo:
    from mlconnector_cli.ports import StackPorts
    from mlconnector_cli.run import Endpoints, demo_connection_env

    # Only the ids are taken, and they do not depend on the ports (the URLs come from
    # stack.json), so the default ports serve, whatever MLC_PORT_* says.
    env = demo_connection_env(Endpoints(ports=StackPorts.model_construct()))
    return SandboxDemo.model_validate({key.lower(): value for key, value in env.items()})


def running_stack() -> StackFile:
    """The stack `mlconnector run` keeps up in this home folder; exit 1 when there is none."""
    home = HomeFolder.from_env()
    stack = read_stack_file(home)
    if stack is None or not stack.pid_alive():
        fail(f"no running stack in {home.root}: start it with `make run`")
    return stack


def connection_ids(given: dict[str, str | None], demo: SandboxDemo | None) -> ConnectionIds:
    """The ids given as options; with --sandbox, the demo clients' ids fill the others."""
    chosen = {key: value for key, value in given.items() if value is not None}
    if demo is not None:
        chosen = demo.model_dump(include=set(ConnectionIds.model_fields)) | chosen
    missing = [
        f"--{key.replace('_', '-')}" for key in ConnectionIds.model_fields if key not in chosen
    ]
    if missing:
        fail(
            f"missing {', '.join(missing)}: give them, or --sandbox to use the running "
            "stack's sandboxes and their demo clients"
        )
    return ConnectionIds.model_validate(chosen)


# One string per paragraph: the help reflows a paragraph but keeps its line breaks.
ADD_HELP = "\n\n".join(
    (
        "Add a connection. The Basware region is found from the credentials and checked now.",
        "--sandbox points the connection at the sandboxes of the stack `make run` keeps up "
        "(read from $MLC_HOME/stack.json): their Visma token and API URLs and the Basware "
        "sandbox's host table. Ids not given are those of the sandboxes' demo clients and "
        "company 1000001. The secrets are asked for as usual; the demo ones are published "
        "demo values: Visma client secret demo-visma-secret, Basware client secret "
        "demo-basware-secret, Visma webhook secret demo-visma-webhook-secret. For example:",
        """echo '{"visma_client_secret": "demo-visma-secret", "basware_client_secret": """
        """"demo-basware-secret"}' | mlconnector connections add demo-2 --sandbox """
        "--secrets-from-stdin",
        "--basware-hosts takes a JSON file: the environment (production or test) and, per "
        "region (EU, US, AU, CA), the base_url its API answers on and the issuer its tokens "
        "carry (the public host URL; the two differ behind a proxy or in a sandbox). Regions "
        "left out are not used. For example:",
        """{"environment": "production", "hosts": {"EU": {"base_url": """
        """"https://basware-proxy.example:8443", "issuer": "https://api.basware.com"}}}""",
    )
)


@app.command(help=ADD_HELP)
def add(
    name: Annotated[str, typer.Argument(help="A short name for the connection, e.g. acme-no.")],
    visma_client_id: Annotated[
        str | None, typer.Option(help="Visma Developer Portal client id.", show_default=False)
    ] = None,
    visma_tenant_id: Annotated[
        str | None,
        typer.Option(
            help="The Visma company's tenant id (not the customer's).", show_default=False
        ),
    ] = None,
    visma_company_id: Annotated[
        str | None,
        typer.Option(
            help="The Visma company id: the connection's tenant in event keys.",
            show_default=False,
        ),
    ] = None,
    basware_client_id: Annotated[
        str | None, typer.Option(help="Basware API client id.", show_default=False)
    ] = None,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Use the running stack's sandboxes and, for ids not given, their demo clients "
            "(see above).",
        ),
    ] = False,
    basware_region: Annotated[
        BaswareRegion | None,
        typer.Option(help="Pin the Basware region; by default it is found from the credentials."),
    ] = None,
    basware_environment: Annotated[
        BaswareEnvironment, typer.Option(help="Basware production or test hosts.")
    ] = BaswareEnvironment.PRODUCTION,
    basware_hosts: Annotated[
        Path | None,
        typer.Option(
            help="A JSON file of Basware hosts replacing the public ones (format above).",
            show_default=False,
        ),
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
    visma_token_url: Annotated[
        str | None,
        typer.Option(help=f"Visma Connect token URL (default {VismaEndpoints().token_url})."),
    ] = None,
    visma_api_base_url: Annotated[
        str | None,
        typer.Option(help=f"Visma.net ERP API base URL (default {VismaEndpoints().api_base_url})."),
    ] = None,
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
    from mlconnector.connection_checks import resolve_region
    from mlconnector.connection_store import ConnectionStore

    if offline and basware_region is None:
        fail("--offline needs --basware-region: without asking Basware the region is unknown")
    with reported_in_one_line():
        stack = running_stack() if sandbox else None
        demo = sandbox_demo() if sandbox else None
        ids = connection_ids(
            {
                "visma_client_id": visma_client_id,
                "visma_tenant_id": visma_tenant_id,
                "visma_company_id": visma_company_id,
                "basware_client_id": basware_client_id,
            },
            demo,
        )
        hosts = host_table(basware_hosts, stack, basware_environment)
        defaults = (
            VismaEndpoints()
            if stack is None
            else VismaEndpoints(token_url=stack.visma_token_url, api_base_url=stack.visma_api_url)
        )
        endpoints = VismaEndpoints(
            token_url=visma_token_url or defaults.token_url,
            api_base_url=visma_api_base_url or defaults.api_base_url,
        )
        keyring = load_keyring()
        secrets = read_secrets_from_stdin() if secrets_from_stdin else secrets_from_prompt()

    async def work() -> Connection:
        credentials = BaswareCredentials(
            client_id=ids.basware_client_id,
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
                    client_id=ids.visma_client_id,
                    client_secret=secrets.visma_client_secret,
                    tenant_id=ids.visma_tenant_id,
                    company_id=ids.visma_company_id,
                    scopes=tuple(visma_scope or (READ_SCOPE,)),
                ),
                visma_endpoints=endpoints,
                visma_webhook_secret=secrets.visma_webhook_secret,
                basware=credentials,
                basware_hosts=hosts,
                basware_webhook_secret=secrets.basware_webhook_secret,
                basware_company_code=basware_company_code
                or (demo.basware_company_code if demo else None),
                basware_receiving_email=basware_receiving_email
                or (demo.basware_receiving_email if demo else None),
                entities=tuple(e for e in ALL_ENTITIES if e in (entity or ALL_ENTITIES)),
                write_back=write_back,
            )
        except ValidationError as error:
            raise ConnectionInvalid.from_validation(f"connection {name!r}", error) from None
        async with ConnectionStore.open(database_url, keyring) as store:
            await store.add(connection)
        return connection

    added = run_checked(work, database_url)
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

    connections = run_checked(work, database_url)
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

    run_checked(work, database_url)
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

    updated = run_checked(work, database_url)
    typer.echo(f"{updated.name}: schedules {_schedules_text(updated)}")


@app.command()
def coding(
    name: Annotated[str, typer.Argument(help="The connection.")],
    cost_center: Annotated[
        int | None,
        typer.Option(help="The segment of the dimension that becomes Basware's cost center."),
    ] = None,
    project: Annotated[
        int | None, typer.Option(help="The segment that becomes Basware's project.")
    ] = None,
    dim_code: Annotated[
        list[str] | None,
        typer.Option(
            help="N=SEGMENT: the segment whose values become Basware's coding dimension "
            "dimCodeN (N 1 to 10), sent as items of the generic list ACC_LIST_N; repeatable."
        ),
    ] = None,
    dimension: Annotated[
        str, typer.Option(help="The Visma dimension the subaccount segments belong to.")
    ] = "SUBACCOUNT",
    rederive: Annotated[
        bool,
        typer.Option(
            help="Re-send (through the changes topic) the segment values and purchase orders "
            "whose Basware record the new layout changes."
        ),
    ] = True,
    to_topic: Annotated[
        str, typer.Option("--to-topic", help="Where the re-sent changes are published.")
    ] = Topic.VISMA_CHANGES.value,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Set which Visma dimension segment becomes Basware's cost center, which its project and
    which a coding dimension dimCode1..10 (docs/basware-p2p.md §10.10). Segments are checked
    against the connection's Visma company; a segment left out is not sent."""
    from mlconnector import coding_change
    from mlconnector.audit.replay import kafka_replay_publisher
    from mlconnector.coding_change import CodingChange, CodingRefused, set_coding
    from mlconnector.connection_store import ConnectionStore
    from mlconnector.mapping import SegmentTarget
    from mlconnector.settings import KafkaSettings

    dim_codes: dict[SegmentTarget, int | None] = {}
    for given in dim_code or []:
        number, _, segment = given.partition("=")
        if not (number.isdigit() and segment.isdigit() and 1 <= int(number) <= 10):
            fail(f"--dim-code {given}: give N=SEGMENT, N from 1 to 10 (--dim-code 1=3)")
        dim_codes[SegmentTarget.dim_code(int(number))] = int(segment)
    try:
        layout = CodingLayout.placing(
            dimension,
            {
                SegmentTarget.COST_CENTER: cost_center,
                SegmentTarget.PROJECT: project,
                **dim_codes,
            },
        )
    except ValidationError as error:
        fail(ConnectionInvalid.from_validation("coding", error).args[0])
    keyring = load_keyring()

    async def work() -> CodingChange:
        import asyncpg

        async with ConnectionStore.open(database_url, keyring) as store:
            try:
                change = await set_coding(store, name, layout)
            except CodingRefused as error:
                fail(str(error))
        if not rederive or not change.changed:
            return change
        log = await asyncpg.connect(database_url, timeout=10)
        try:
            async with kafka_replay_publisher(KafkaSettings(), to_topic) as out:
                return await coding_change.rederive(change, log, out)
        finally:
            await log.close()

    change = run_checked(work, database_url)
    typer.echo(change.summary())
    if change.changed and rederive:
        typer.echo(f"{change.resent} records re-sent with the new coding.")

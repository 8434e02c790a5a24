"""`mlconnector run`: the whole pipeline on embedded defaults, in a home folder that lasts.

Starts the local stack (broker and database), the Visma and Basware sandboxes seeded with
demo data, and the five services as separate processes, each on its fixed port. What must
outlive a stop is in the home folder (MLC_HOME, default `.mlconnector/`): the database, the
master key, the sandboxes' state and the logs; `stack.json` there tells the other commands
where the running stack is. A second start on the same home resumes where the first stopped;
`--reset` starts from nothing. Ctrl-C stops everything.
With --sync-once it exits 0 once every record of the Visma sandbox is delivered, or 1 with
the reason when that has not happened within --timeout seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mlconnector.asgi import listening_ports
from mlconnector.basware import BaswareHost, BaswareHosts, BaswareRegion
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection, ConnectionEnv
from mlconnector.contracts import Entity
from mlconnector.database_roles import CLI
from mlconnector.home import HomeFolder, StackEndpoint, StackFile, read_stack_file, write_stack_file
from mlconnector.vault import Keyring, dev_key
from mlconnector_cli.broker_health import BrokerHealth
from mlconnector_cli.connections import database_location
from mlconnector_cli.ports import (
    BASWARE_SANDBOX_PORTS,
    VISMA_SANDBOX_PORTS,
    PortClaim,
    StackPorts,
    check_free,
)
from mlconnector_cli.processes import ManagedProcess, held_still
from mlconnector_cli.progress import (
    ProgressReader,
    ProgressSnapshot,
    RateMeter,
    render_line,
)
from mlconnector_cli.stack import (
    EmbeddedBroker,
    Stack,
    create_topics,
    forget_home_database,
    local_stack,
)

WRITER = "basware-writer"
SANDBOXES = ("visma-sandbox", "basware-sandbox")
SERVICES = (
    "audit-store",
    WRITER,
    "webhook-gateway",
    "invoice-follow-up",
    "reconciler",
    "visma-reader",
)
# The operator console: started by `mlconnector run` beside the pipeline, not by benchmarks.
CONSOLE = "console"
# The demo connection: the sandboxes' seeded company 1 and their demo API clients.
DEMO_CONNECTION = "demo"
DEMO_VISMA_COMPANY_ID = "1000001"
DEMO_VISMA_TENANT_ID = "e5d8ab8d-e0ea-5e22-8ba6-92bc8b43aa63"
DEMO_VISMA_WEBHOOK_SECRET = "demo-visma-webhook-secret"  # noqa: S105 (published demo value)
DEMO_BASWARE_COMPANY_CODE = "BW00"
# Offsets of the production hosts among the Basware sandbox's ports (EU, then its test
# host, then US, ...: the sandbox's own host order).
BASWARE_PRODUCTION_OFFSETS = {
    BaswareRegion.EU: 0,
    BaswareRegion.US: 2,
    BaswareRegion.AU: 4,
    BaswareRegion.CA: 6,
}
BASWARE_PUBLIC_HOSTS = BaswareHosts.public()


class RunOptions(BaseModel):
    sync_once: bool = False
    timeout: float = 300.0
    suppliers: int = 300
    purchase_orders: int = 600
    invoices: int = 600
    poll_interval: float = 5.0
    # basware-writer instances in one consumer group: they split the partitions.
    writers: int = Field(default=1, ge=1)
    log_dir: Path = Path(".mlconnector/logs")
    # Where the sandboxes keep their state across restarts; None keeps nothing.
    sandbox_state_dir: Path | None = None
    # Off: a new home gets no connection; one is added in the console.
    demo_connection: bool = True


class Endpoints(BaseModel):
    """The ports of one stack's processes, and the URLs they make."""

    model_config = ConfigDict(frozen=True)

    ports: StackPorts

    @property
    def visma_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.visma_sandbox}"

    @property
    def visma_connect_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.visma_sandbox + 1}"

    @property
    def basware_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.basware_sandbox}"

    @property
    def gateway_url(self) -> str:
        return self.service_url("webhook-gateway")

    def service_url(self, service: str, instance: int = 1) -> str:
        return f"http://127.0.0.1:{self.ports.service(service, instance)}"

    def basware_hosts(self) -> BaswareHosts:
        """The sandbox's production hosts; tokens carry Basware's public issuers."""
        return BaswareHosts(
            hosts={
                region: BaswareHost(
                    base_url=f"http://127.0.0.1:{self.ports.basware_sandbox + offset}",
                    issuer=BASWARE_PUBLIC_HOSTS.host(region).issuer,
                )
                for region, offset in BASWARE_PRODUCTION_OFFSETS.items()
            }
        )

    def claims(self, writers: int, *, broker: bool) -> list[PortClaim]:
        claims = [
            PortClaim(
                port=self.ports.visma_sandbox + n,
                owner="visma-sandbox",
                setting="MLC_PORT_VISMA_SANDBOX",
            )
            for n in range(VISMA_SANDBOX_PORTS)
        ]
        claims += [
            PortClaim(
                port=self.ports.basware_sandbox + n,
                owner="basware-sandbox",
                setting="MLC_PORT_BASWARE_SANDBOX",
            )
            for n in range(BASWARE_SANDBOX_PORTS)
        ]
        for service in SERVICES:
            for instance in range(1, (writers if service == WRITER else 1) + 1):
                setting = "MLC_PORT_MORE_WRITERS" if instance > 1 else _setting_of(service)
                claims.append(
                    PortClaim(
                        port=self.ports.service(service, instance),
                        owner=instance_names(service, instance)[-1],
                        setting=setting,
                    )
                )
        claims.append(PortClaim(port=self.ports.console, owner=CONSOLE, setting="MLC_PORT_CONSOLE"))
        if broker:
            claims.append(
                PortClaim(port=self.ports.broker, owner="broker", setting="MLC_PORT_BROKER")
            )
        return claims


def _setting_of(service: str) -> str:
    field = {"webhook-gateway": "gateway"}.get(service, service.replace("-", "_"))
    return f"MLC_PORT_{field.upper()}"


def random_endpoints() -> Endpoints:
    """Free loopback ports for every process (benchmarks, which run beside a live stack)."""
    block = listening_ports(40)
    return Endpoints(
        ports=StackPorts(
            gateway=block,
            visma_reader=block + 1,
            basware_writer=block + 2,
            audit_store=block + 3,
            broker=block + 4,
            invoice_follow_up=block + 5,
            console=block + 6,
            reconciler=block + 7,
            more_writers=block + 10,
            visma_sandbox=block + 20,
            basware_sandbox=block + 30,
        )
    )


def sandbox_processes(options: RunOptions, endpoints: Endpoints) -> list[ManagedProcess]:
    bin_dir = Path(sys.executable).parent
    state: dict[str, list[str]] = {"visma": [], "basware": []}
    if options.sandbox_state_dir is not None:
        options.sandbox_state_dir.mkdir(parents=True, exist_ok=True)
        state = {name: ["--state-dir", str(options.sandbox_state_dir)] for name in state}
    return [
        ManagedProcess(
            "visma-sandbox",
            [
                str(bin_dir / "visma-sandbox"),
                *("--port", str(endpoints.ports.visma_sandbox)),
                *("--suppliers", str(options.suppliers)),
                *("--purchase-orders", str(options.purchase_orders)),
                *("--invoices", str(options.invoices)),
                *("--companies", "1"),
                *("--webhook-secret", DEMO_VISMA_WEBHOOK_SECRET),
                *("--webhook-url", f"{endpoints.gateway_url}/webhooks/visma"),
                *state["visma"],
            ],
            env={},
            log_dir=options.log_dir,
        ),
        ManagedProcess(
            "basware-sandbox",
            [
                str(bin_dir / "basware-sandbox"),
                *("--port", str(endpoints.ports.basware_sandbox)),
                *state["basware"],
            ],
            env={},
            log_dir=options.log_dir,
        ),
    ]


def demo_connection_env(endpoints: Endpoints) -> dict[str, str]:
    """The demo connection as environment variables (the single-connection form)."""
    return {
        "MLC_CONNECTION_NAME": DEMO_CONNECTION,
        "VISMA_CLIENT_ID": "demo-visma-client",
        "VISMA_CLIENT_SECRET": "demo-visma-secret",
        "VISMA_TENANT_ID": DEMO_VISMA_TENANT_ID,
        "VISMA_COMPANY_ID": DEMO_VISMA_COMPANY_ID,
        "VISMA_TOKEN_URL": f"{endpoints.visma_connect_url}/connect/token",
        "VISMA_API_BASE_URL": f"{endpoints.visma_url}/v1/",
        "VISMA_WEBHOOK_SECRET": DEMO_VISMA_WEBHOOK_SECRET,
        "BASWARE_CLIENT_ID": "demo-basware-client",
        "BASWARE_CLIENT_SECRET": "demo-basware-secret",
        "BASWARE_REGION": "EU",
        "BASWARE_BASE_URL": endpoints.basware_url,
        "BASWARE_COMPANY_CODE": DEMO_BASWARE_COMPANY_CODE,
        "BASWARE_RECEIVING_EMAIL": "invoices@demo.basware.local",
    }


def demo_connection(endpoints: Endpoints) -> Connection:
    values = {k.lower(): v for k, v in demo_connection_env(endpoints).items()}
    return ConnectionEnv.model_validate(values).connection()


async def store_demo_connection(database_url: str, keyring: Keyring, endpoints: Endpoints) -> bool:
    """Adds the demo connection to a store that holds none, or points it at this run's
    sandbox ports when they moved (its schedules kept). Returns whether it is stored."""
    wanted = demo_connection(endpoints)
    async with ConnectionStore.open(database_url, keyring) as store:
        stored = {c.name: c for c in await store.list()}
        if not stored:
            await store.add(wanted)
            return True
        current = stored.get(DEMO_CONNECTION)
        if current is None:
            return False
        moved = wanted.model_copy(update={"schedules": current.schedules})
        if moved != current:
            await store.remove(DEMO_CONNECTION)
            await store.add(moved)
        return True


async def wait_until_up(url: str, exited: list[ManagedProcess], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            for process in exited:
                if process.exited is not None:
                    raise RuntimeError(
                        f"{process.name} exited with code {process.exited}:\n{process.tail()}"
                    )
            with contextlib.suppress(httpx.TransportError):
                await http.get(url, timeout=2)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def wait_until_ready(url: str, exited: list[ManagedProcess], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            for process in exited:
                if process.exited is not None:
                    raise RuntimeError(
                        f"{process.name} exited with code {process.exited}:\n{process.tail()}"
                    )
            with contextlib.suppress(httpx.TransportError):
                answer = await http.get(f"{url}/readyz", timeout=5)
                if answer.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}/readyz is not ready within {timeout:.0f} s")
            await asyncio.sleep(0.2)


def expected_totals(options: RunOptions) -> dict[Entity, int]:
    return {
        Entity.SUPPLIER: options.suppliers,
        Entity.PURCHASE_ORDER: options.purchase_orders,
        Entity.SUPPLIER_INVOICE: options.invoices,
    }


class SandboxCompany(BaseModel):
    company_id: str = Field(alias="companyId")
    record_counts: dict[str, int] = Field(alias="recordCounts")


class SandboxCompanies(BaseModel):
    companies: list[SandboxCompany]


async def visma_totals(visma: httpx.AsyncClient, company_id: str) -> dict[Entity, int]:
    """What the Visma sandbox holds now: the totals a sync of it reaches."""
    answer = await visma.get("/_sandbox/companies")
    answer.raise_for_status()
    companies = SandboxCompanies.model_validate_json(answer.content).companies
    counts = next((c.record_counts for c in companies if c.company_id == company_id), {})
    return {entity: counts.get(entity.value.replace("_", ""), 0) for entity in Entity}


def service_processes(
    options: RunOptions,
    stack: Stack,
    endpoints: Endpoints,
    connection_env: Mapping[str, str],
) -> list[ManagedProcess]:
    bin_dir = Path(sys.executable).parent
    env = {
        **connection_env,
        "VISMA_READER_POLL_INTERVAL_SECONDS": str(options.poll_interval),
        # The one reader of the stack: started again, it takes its leases back at once.
        "VISMA_READER_INSTANCE": "mlconnector-run",
    }
    return [
        ManagedProcess(
            instance_name,
            [str(bin_dir / name)],
            env={
                **stack.environment(name),
                **env,
                "MLC_HTTP_PORT": str(endpoints.ports.service(name, instance)),
            },
            log_dir=options.log_dir,
        )
        for name in SERVICES
        for instance, instance_name in enumerate(
            instance_names(name, options.writers if name == WRITER else 1), start=1
        )
    ]


def console_process(
    options: RunOptions, stack: Stack, endpoints: Endpoints, env: Mapping[str, str]
) -> ManagedProcess:
    port = str(endpoints.ports.console)
    return ManagedProcess(
        CONSOLE,
        [str(Path(sys.executable).parent / CONSOLE)],
        env={**stack.environment(CONSOLE), **env, "MLC_HTTP_PORT": port},
        log_dir=options.log_dir,
    )


def instance_names(service: str, count: int) -> list[str]:
    """basware-writer, basware-writer-2, ...: one name per process, for its log and metrics."""
    return [service, *(f"{service}-{n}" for n in range(2, count + 1))]


class HomeInUse(RuntimeError):
    """Another `mlconnector run` is using this home folder."""


def stack_file_of(
    home: HomeFolder, stack: Stack, endpoints: Endpoints, options: RunOptions
) -> StackFile:
    services = [
        StackEndpoint(
            name=instance_name,
            url=endpoints.service_url(name, instance),
            setting="MLC_PORT_MORE_WRITERS" if instance > 1 else _setting_of(name),
        )
        for name in SERVICES
        for instance, instance_name in enumerate(
            instance_names(name, options.writers if name == WRITER else 1), start=1
        )
    ]
    services.append(
        StackEndpoint(
            name=CONSOLE, url=endpoints.service_url(CONSOLE), setting=_setting_of(CONSOLE)
        )
    )
    sandboxes = [
        StackEndpoint(
            name="visma-sandbox", url=endpoints.visma_url, setting="MLC_PORT_VISMA_SANDBOX"
        ),
        StackEndpoint(
            name="basware-sandbox", url=endpoints.basware_url, setting="MLC_PORT_BASWARE_SANDBOX"
        ),
    ]
    return StackFile(
        home=home.root,
        pid=os.getpid(),
        started_at=datetime.now(UTC),
        # What the commands beside the stack connect with: their own role's URL.
        database_url=stack.login_url(CLI),
        database_origin=stack.database_origin,
        bootstrap_servers=stack.bootstrap_servers,
        broker_origin=stack.broker_origin,
        master_key_file=home.master_key_file,
        services=services,
        sandboxes=sandboxes,
        basware_hosts=endpoints.basware_hosts(),
        visma_token_url=f"{endpoints.visma_connect_url}/connect/token",
        visma_api_url=f"{endpoints.visma_url}/v1/",
    )


def render_stack_table(stack_file: StackFile) -> str:
    rows = [(e.name, e.url, e.setting) for e in [*stack_file.services, *stack_file.sandboxes]]
    rows.append(("broker", stack_file.bootstrap_servers, f"({stack_file.broker_origin})"))
    database = database_location(stack_file.database_url)
    rows.append(("database", database, f"({stack_file.database_origin})"))
    width = max(len(r[0]) for r in rows)
    url_width = max(len(r[1]) for r in rows)
    lines = [f"ml-connector is up; home {stack_file.home}"]
    lines += [f"  {name:<{width}}  {url:<{url_width}}  {note}" for name, url, note in rows]
    lines.append(f"  {'logs':<{width}}  {stack_file.home / 'logs'}/<process>.log")
    return "\n".join(lines)


def console_hint(stack_file: StackFile) -> str:
    return (
        f"console: {stack_file.service_url('console')} (log in; the first admin comes from "
        "`mlconnector users add NAME --role admin`)"
    )


STOP_HINT = (
    "Ctrl-C stops the stack; `make run` again resumes where it stopped, "
    "`make run RESET=1` starts from nothing."
)


async def reset_home(home: HomeFolder) -> None:
    await forget_home_database(home)
    shutil.rmtree(home.root, ignore_errors=True)


def claim_home(home: HomeFolder) -> None:
    running = read_stack_file(home)
    if running is not None and running.pid != os.getpid() and running.pid_alive():
        raise HomeInUse(
            f"a stack already runs from {home.root} (pid {running.pid}); stop it first, "
            "or set MLC_HOME to another folder"
        )


async def run_pipeline(options: RunOptions, home: HomeFolder, ports: StackPorts) -> int:
    started = time.monotonic()
    if options.sandbox_state_dir is None:
        options = options.model_copy(
            update={"log_dir": home.logs, "sandbox_state_dir": home.sandboxes}
        )
    endpoints = Endpoints(ports=ports)
    claim_home(home)
    check_free(
        endpoints.claims(options.writers, broker="KAFKA_BOOTSTRAP_SERVERS" not in os.environ)
    )
    options.log_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(STOP_HINT, flush=True)
    if not home.master_key_file.exists():
        # A new home, or one deleted by hand: a database left from an earlier one at this path
        # holds secrets sealed under a key that is gone.
        await forget_home_database(home)
    async with local_stack(purpose="run", home=home, broker_port=ports.broker) as stack:
        keyring = Keyring(dev_key(home.master_key_file))
        if options.demo_connection:
            await store_demo_connection(stack.database_url, keyring, endpoints)
        # The console finds the stack (its services, the sandboxes' URLs) in the home.
        key_env = {"MLC_MASTER_KEY_FILE": str(home.master_key_file), "MLC_HOME": str(home.root)}
        processes = sandbox_processes(options, endpoints)
        processes += service_processes(options, stack, endpoints, key_env)
        processes.append(console_process(options, stack, endpoints, key_env))
        stack_file = stack_file_of(home, stack, endpoints, options)
        try:
            for process in processes:
                await process.start()
            await wait_until_up(endpoints.visma_url, processes)
            await wait_until_up(endpoints.basware_url, processes)
            for service in stack_file.services:
                await wait_until_up(f"{service.url}/healthz", processes)
            for name in SERVICES:
                count = options.writers if name == WRITER else 1
                for instance in range(1, count + 1):
                    # Ready: broker, database and loops answer, its consumers have partitions.
                    await wait_until_ready(endpoints.service_url(name, instance), processes)
            write_stack_file(home, stack_file)
            print(render_stack_table(stack_file), flush=True)
            print(console_hint(stack_file), flush=True)
            return await _watch(options, stack, endpoints, processes, stop, started)
        finally:
            home.stack_file.unlink(missing_ok=True)
            await asyncio.gather(*(p.stop() for p in reversed(processes)))


async def replace_lost_broker(
    stack: Stack, broker: EmbeddedBroker, processes: Sequence[ManagedProcess]
) -> None:
    """The embedded broker died and took every message with it (docs/event-broker.md §3.6): a new,
    empty one on the same port, with the topics. The services stay up: their clients find
    the new broker at the same address, and visma-reader recovers from PostgreSQL what the
    old one held (README, "Broker loss"), with no one typing a command.

    The processes hold still while the new broker starts and gets its topics: a client
    that reached it first would have a topic it asks for created with 4 partitions, and
    clients producing while the topics are created leave the new broker refusing writes to
    them (docs/event-broker.md §3.6)."""
    print(
        f"the broker at {broker.address} is gone: starting a new, empty one there; the "
        "services recover what it held from the database",
        flush=True,
    )
    with held_still(processes):
        await broker.start()
        await create_topics(stack)


class ProgressPrinter:
    """Writes the progress line only when it changed: in place on a terminal, as a new line
    in a log or a pipe."""

    def __init__(self) -> None:
        self._last = ""
        self._shown: tuple[ProgressSnapshot, str | None] | None = None
        self._tty = sys.stdout.isatty()

    def show(self, snapshot: ProgressSnapshot, rate: float | None, notice: str | None) -> None:
        # The counts decide, not the text: a rate that decays while nothing moves is no news.
        if (snapshot, notice) == self._shown:
            return
        self._shown = (snapshot, notice)
        line = render_line(snapshot, rate, notice)
        self._last = line
        if self._tty:
            print(f"\r\033[K{line}", end="", flush=True)
        else:
            print(line, flush=True)

    def say(self, lines: Sequence[str]) -> None:
        """Lines of their own, between two progress lines."""
        if lines:
            self.close()
            for line in lines:
                print(line, flush=True)

    def close(self) -> None:
        if self._tty and self._last:
            print(flush=True)
            self._last = ""


async def _watch(
    options: RunOptions,
    stack: Stack,
    endpoints: Endpoints,
    processes: list[ManagedProcess],
    stop: asyncio.Event,
    started: float,
) -> int:
    printer = ProgressPrinter()
    rate = RateMeter()
    run_started_at = datetime.now(UTC) - timedelta(seconds=time.monotonic() - started)
    broker = BrokerHealth(stack.kafka_settings(), since=run_started_at)
    # Asked every second for the whole run: one client and one connection, not one a second.
    async with (
        httpx.AsyncClient(base_url=endpoints.visma_url, timeout=10) as visma,
        contextlib.aclosing(ProgressReader(stack.database_url)) as progress,
    ):
        return await _watch_loop(
            options, stack, processes, stop, started, visma, progress, printer, rate, broker
        )


async def _watch_loop(
    options: RunOptions,
    stack: Stack,
    processes: list[ManagedProcess],
    stop: asyncio.Event,
    started: float,
    visma: httpx.AsyncClient,
    progress: ProgressReader,
    printer: ProgressPrinter,
    rate: RateMeter,
    broker: BrokerHealth,
) -> int:
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            if stack.embedded is not None and not stack.embedded.alive and not stop.is_set():
                printer.close()
                await replace_lost_broker(stack, stack.embedded, processes)
                broker.lost()
            for process in processes:
                if process.exited is not None:
                    printer.close()
                    print(f"{process.name} exited with code {process.exited}:\n{process.tail()}")
                    return 1
            printer.say(await broker.tick(await progress.connection()))
            totals = await visma_totals(visma, DEMO_VISMA_COMPANY_ID)
            snapshot = await progress.snapshot(totals, DEMO_VISMA_COMPANY_ID)
            rate.add(snapshot.settled)
            printer.show(snapshot, rate.per_second(), broker.notice())
            if options.sync_once:
                verdict = sync_once_verdict(options, snapshot, broker, time.monotonic() - started)
                if verdict is not None:
                    code, message = verdict
                    printer.close()
                    print(message if code == 0 else f"{message} See {options.log_dir}/ for logs.")
                    return code
    finally:
        printer.close()
    print("stopping")
    return 0


def sync_once_verdict(
    options: RunOptions, snapshot: ProgressSnapshot, broker: BrokerHealth, elapsed: float
) -> tuple[int, str] | None:
    """How `--sync-once` ends now (exit code, what it says), or None to go on watching.

    The time the broker did not answer, or visma-reader was recovering what a lost one held,
    does not count against --timeout: the records are not missing then, they are waiting
    for the broker. A broker stalled for longer than --timeout ends the run all the same,
    naming the broker."""
    if snapshot.all_delivered():
        return 0, f"all {snapshot.total} records delivered in {elapsed:.1f} s"
    stalled_since = broker.stalled_since
    if stalled_since is not None:
        stalled = time.monotonic() - stalled_since
        if stalled <= options.timeout:
            return None
        if broker.down_since is not None:
            return 1, f"the broker at {broker.address} has not answered for {stalled:.0f} s."
        return 1, (
            f"visma-reader has not recovered what the lost broker at {broker.address} held "
            f"within {stalled:.0f} s."
        )
    if elapsed - broker.stalled_seconds <= options.timeout:
        return None
    missing = {e.value: p.total - p.delivered for e, p in snapshot.entities.items()}
    return 1, (
        f"not everything was delivered within {options.timeout:.0f} s; still missing per "
        f"entity: {missing}."
    )

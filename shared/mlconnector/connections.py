"""Connections: one Visma.net company joined to one Basware tenant, and where services get them.

A connection carries both OAuth2 credential sets (the clients' own models), the webhook
secrets, which entities it syncs, whether it writes back to Visma, and a poll schedule per
entity. Its `tenant` is the Visma company id, the first half of every event key.

Two sources serve the same read interface (`ConnectionSource`): the encrypted store in
PostgreSQL (`mlconnector.connection_store.ConnectionStore`, managed with
`mlconnector connections ...`) and a single connection described by environment variables
(`EnvConnectionSource`, for the local demo and simple deployments; see `ConnectionEnv`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, Json, SecretStr, ValidationError

from mlconnector.basware import (
    BaswareClient,
    BaswareCredentials,
    BaswareEnvironment,
    BaswareHost,
    BaswareHosts,
    BaswareRegion,
)
from mlconnector.contracts import Entity
from mlconnector.mapping import DEFAULT_LAYOUT, CodingLayout
from mlconnector.schedule import (
    CronSchedule,
    IntervalSchedule,
    Schedule,
    earliest_due,
    is_due,
    parse_schedule,
)
from mlconnector.visma import READ_SCOPE, VismaClient, VismaCredentials, VismaEndpoints
from mlconnector.visma.ratelimit import QuotaGate

ConnectionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
# Dependency order: reference data first (vendors name credit terms; order and invoice lines
# name accounts, dimension values and VAT categories), then suppliers, whose vendors a
# purchase order or an invoice needs in Basware.
ALL_ENTITIES: tuple[Entity, ...] = (
    Entity.CREDIT_TERM,
    Entity.VAT_CATEGORY,
    Entity.ACCOUNT,
    Entity.DIMENSION_VALUE,
    Entity.SUPPLIER,
    Entity.PURCHASE_ORDER,
    Entity.SUPPLIER_INVOICE,
)


class ConnectionNotFound(LookupError):
    def __init__(self, name: str, *, by: str = "named") -> None:
        super().__init__(f"no connection {by} {name!r}")
        self.name = name


class ConnectionInvalid(ValueError):
    """A connection's settings do not validate. The message names fields, never values."""

    @classmethod
    def from_validation(
        cls, what: str, error: ValidationError, *, env: bool = False
    ) -> ConnectionInvalid:
        # pydantic's own message repeats the input, which may hold a secret: leave it out.
        problems = "; ".join(
            f"{_location(e['loc'], env)}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False, include_context=False)
        )
        return cls(f"{what}: {problems}")


def _location(loc: tuple[int | str, ...], env: bool) -> str:
    text = ".".join(map(str, loc)) or "value"
    return text.upper() if env else text


class Connection(BaseModel):
    """One Visma company joined to one Basware tenant. Secrets are SecretStr throughout."""

    model_config = ConfigDict(frozen=True)

    name: ConnectionName
    visma: VismaCredentials
    visma_endpoints: VismaEndpoints = Field(default_factory=VismaEndpoints)
    # The Developer Portal subscription secret that signs Visma's webhooks, if subscribed.
    visma_webhook_secret: SecretStr | None = None
    basware: BaswareCredentials
    # None: Basware's public production hosts.
    basware_hosts: BaswareHosts | None = None
    basware_webhook_secret: SecretStr | None = None
    # The Basware company (organisation unit) vendors, orders and invoices belong to; a
    # connection without one can read Visma but the writer rejects what it cannot place.
    basware_company_code: str | None = None
    # The SmartPDF inbox of the Basware tenant that receives the connector's invoice uploads.
    basware_receiving_email: str | None = None
    entities: tuple[Entity, ...] = ALL_ENTITIES
    write_back: bool = False
    # A disabled connection is kept, secrets and all, but not polled.
    enabled: bool = True
    # Entities without a schedule use the reader's default interval.
    schedules: dict[Entity, Schedule] = Field(default_factory=dict)
    # Which Visma dimension segment becomes Basware's cost center and which its project.
    coding: CodingLayout = DEFAULT_LAYOUT

    @property
    def tenant(self) -> str:
        """The Visma company id: the tenant of every event key (`tenant:supplier-number`)."""
        return self.visma.company_id

    @property
    def hosts(self) -> BaswareHosts:
        return self.basware_hosts or BaswareHosts.public()

    def schedule_for(
        self, entity: Entity, default: IntervalSchedule | CronSchedule
    ) -> IntervalSchedule | CronSchedule:
        return self.schedules.get(entity, default)

    def visma_client(
        self, transport: httpx.AsyncBaseTransport | None = None, quota: QuotaGate | None = None
    ) -> VismaClient:
        """`quota`: the company's shared plan (quota_plan.py) in a service; none, the
        headers are only remembered."""
        return VismaClient(self.visma, self.visma_endpoints, transport=transport, quota=quota)

    def basware_client(self, transport: httpx.AsyncBaseTransport | None = None) -> BaswareClient:
        return BaswareClient(self.basware, self.hosts, transport=transport)


class ConnectionSource(Protocol):
    """What services read connections from: the encrypted store or the environment."""

    async def list(self) -> Sequence[Connection]: ...

    async def get(self, name: str) -> Connection: ...


class ConnectionEnv(BaseModel):
    """One connection from environment variables (the demo, and single-tenant deployments).

    Each field is the lower-cased name of its variable: VISMA_CLIENT_ID, ..."""

    model_config = ConfigDict(extra="ignore")

    mlc_connection_name: str = "default"
    visma_client_id: str
    visma_client_secret: SecretStr
    visma_tenant_id: str
    visma_company_id: str
    visma_scopes: str = READ_SCOPE
    visma_token_url: str = VismaEndpoints().token_url
    visma_api_base_url: str = VismaEndpoints().api_base_url
    visma_webhook_secret: SecretStr | None = None
    basware_client_id: str
    basware_client_secret: SecretStr
    basware_region: BaswareRegion | None = None
    basware_environment: BaswareEnvironment = BaswareEnvironment.PRODUCTION
    # One URL for the (configured or default EU) region, e.g. a sandbox or a proxy; its
    # tokens still carry the region's public issuer unless BASWARE_ISSUER says otherwise.
    basware_base_url: str | None = None
    basware_issuer: str | None = None
    # The whole host table as JSON (BaswareHosts), for AU/CA or private hosts.
    basware_hosts: Json[BaswareHosts] | None = None
    basware_webhook_secret: SecretStr | None = None
    basware_company_code: str | None = None
    basware_receiving_email: str | None = None
    mlc_entities: str = ",".join(ALL_ENTITIES)
    mlc_write_back: bool = False
    mlc_schedule_supplier: str | None = None
    mlc_schedule_purchase_order: str | None = None
    mlc_schedule_supplier_invoice: str | None = None

    def _host_table(self) -> BaswareHosts | None:
        if self.basware_hosts is not None or self.basware_base_url is None:
            return self.basware_hosts
        region = self.basware_region or BaswareRegion.EU
        public = BaswareHosts.public(self.basware_environment).host(region)
        host = BaswareHost(
            base_url=self.basware_base_url.rstrip("/"),
            issuer=self.basware_issuer or public.issuer,
        )
        return BaswareHosts(environment=self.basware_environment, hosts={region: host})

    def connection(self) -> Connection:
        schedules = {
            entity: parse_schedule(text)
            for entity, text in (
                (Entity.SUPPLIER, self.mlc_schedule_supplier),
                (Entity.PURCHASE_ORDER, self.mlc_schedule_purchase_order),
                (Entity.SUPPLIER_INVOICE, self.mlc_schedule_supplier_invoice),
            )
            if text
        }
        hosts = self._host_table()
        # A single configured host pins the region: there is nothing else to detect.
        region = self.basware_region or (
            next(iter(hosts.hosts)) if hosts is not None and len(hosts.hosts) == 1 else None
        )
        return Connection(
            name=self.mlc_connection_name,
            visma=VismaCredentials(
                client_id=self.visma_client_id,
                client_secret=self.visma_client_secret,
                tenant_id=self.visma_tenant_id,
                company_id=self.visma_company_id,
                scopes=tuple(self.visma_scopes.split()),
            ),
            visma_endpoints=VismaEndpoints(
                token_url=self.visma_token_url, api_base_url=self.visma_api_base_url
            ),
            visma_webhook_secret=self.visma_webhook_secret,
            basware=BaswareCredentials(
                client_id=self.basware_client_id,
                client_secret=self.basware_client_secret,
                region=region,
            ),
            basware_hosts=hosts,
            basware_webhook_secret=self.basware_webhook_secret,
            basware_company_code=self.basware_company_code,
            basware_receiving_email=self.basware_receiving_email,
            entities=tuple(Entity(e.strip()) for e in self.mlc_entities.split(",") if e.strip()),
            write_back=self.mlc_write_back,
            schedules=schedules,
        )


async def find_tenant(source: ConnectionSource, tenant: str) -> Connection:
    """The connection of a Visma company id (the tenant in event keys)."""
    for connection in await source.list():
        if connection.tenant == tenant:
            return connection
    raise ConnectionNotFound(tenant, by="for tenant")


class StaticConnectionSource:
    """A fixed set of connections: for tests, benchmarks and embedding the services."""

    def __init__(self, connections: Sequence[Connection]) -> None:
        self._connections = {c.name: c for c in connections}

    async def list(self) -> Sequence[Connection]:
        return list(self._connections.values())

    async def get(self, name: str) -> Connection:
        try:
            return self._connections[name]
        except KeyError:
            raise ConnectionNotFound(name) from None


class EnvConnectionSource:
    """The single connection the environment describes, behind the store's read interface."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        values = {k.lower(): v for k, v in env.items() if v != ""}
        try:
            self._connection = ConnectionEnv.model_validate(values).connection()
        except ValidationError as error:
            raise ConnectionInvalid.from_validation(
                "the environment does not describe a connection", error, env=True
            ) from None
        except ValueError as error:
            raise ConnectionInvalid(
                f"the environment does not describe a connection: {error}"
            ) from None

    @staticmethod
    def configured(environ: Mapping[str, str] | None = None) -> bool:
        """Whether the environment describes a connection (VISMA_CLIENT_ID is set)."""
        env = os.environ if environ is None else environ
        return bool(env.get("VISMA_CLIENT_ID"))

    async def list(self) -> Sequence[Connection]:
        return [self._connection]

    async def get(self, name: str) -> Connection:
        if name != self._connection.name:
            raise ConnectionNotFound(name)
        return self._connection


# --- schedules: what is due now, for visma-reader ---

LastRuns = Mapping[tuple[str, Entity], datetime]


class DuePoll(BaseModel):
    model_config = ConfigDict(frozen=True)

    connection: Connection
    entity: Entity


def due_entities(
    connection: Connection,
    last_runs: LastRuns,
    now: datetime,
    default: IntervalSchedule | CronSchedule,
) -> list[Entity]:
    """The connection's entities due at `now`, in dependency order; none while disabled."""
    if not connection.enabled:
        return []
    return [
        entity
        for entity in ALL_ENTITIES
        if entity in connection.entities
        and is_due(
            connection.schedule_for(entity, default), last_runs.get((connection.name, entity)), now
        )
    ]


def next_poll_at(
    connection: Connection,
    last_runs: LastRuns,
    now: datetime,
    default: IntervalSchedule | CronSchedule,
) -> datetime | None:
    """When the connection's next entity falls due (None when it syncs no entity)."""
    return earliest_due(
        {e.value: connection.schedule_for(e, default) for e in connection.entities},
        {
            e.value: last_runs[(connection.name, e)]
            for e in connection.entities
            if (connection.name, e) in last_runs
        },
        now,
    )


async def due_polls(
    source: ConnectionSource,
    now: datetime,
    last_runs: LastRuns,
    default: IntervalSchedule | CronSchedule,
) -> list[DuePoll]:
    """Every (connection, entity) due at `now`, read fresh from the source on each call,
    so a schedule changed with `mlconnector connections schedule` applies without a restart."""
    return [
        DuePoll(connection=connection, entity=entity)
        for connection in await source.list()
        for entity in due_entities(connection, last_runs, now, default)
    ]

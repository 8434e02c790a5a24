"""Connections as the console shows and takes them: pure conversions, no I/O.

A view never holds a secret, only which secrets are set. A form's secrets are SecretStr
from the moment they are read, and go into the Connection, which the store seals.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, ValidationError

from mlconnector.basware import (
    BaswareCredentials,
    BaswareEnvironment,
    BaswareHosts,
    BaswareRegion,
)
from mlconnector.connection_store import split_secrets
from mlconnector.connections import ALL_ENTITIES, Connection, ConnectionInvalid
from mlconnector.contracts import Entity
from mlconnector.mapping import CodingLayout, SegmentTarget
from mlconnector.schedule import CronSchedule, IntervalSchedule, parse_every
from mlconnector.visma import READ_SCOPE, VismaCredentials, VismaEndpoints


def _blank_is_none(value: Any) -> Any:
    # An HTML form sends an empty field as "": for an optional setting that means none.
    return None if isinstance(value, str) and not value.strip() else value


Optional = BeforeValidator(_blank_is_none)


class ConnectionForm(BaseModel):
    """Every field `mlconnector connections add` takes."""

    name: str
    visma_client_id: str
    visma_client_secret: SecretStr
    visma_tenant_id: str
    visma_company_id: str
    visma_token_url: str = VismaEndpoints().token_url
    visma_api_base_url: str = VismaEndpoints().api_base_url
    visma_scopes: str = READ_SCOPE
    visma_webhook_secret: Annotated[SecretStr | None, Optional] = None
    basware_client_id: str
    basware_client_secret: SecretStr
    basware_region: Annotated[BaswareRegion | None, Optional] = None
    basware_environment: BaswareEnvironment = BaswareEnvironment.PRODUCTION
    # A JSON host table (README "Connections, credentials and ping"); none: the public hosts.
    basware_hosts: Annotated[str | None, Optional] = None
    basware_webhook_secret: Annotated[SecretStr | None, Optional] = None
    basware_company_code: Annotated[str | None, Optional] = None
    basware_receiving_email: Annotated[str | None, Optional] = None
    entities: list[Entity] = Field(default_factory=lambda: list(ALL_ENTITIES))
    write_back: bool = False


def host_table(form: ConnectionForm) -> BaswareHosts | None:
    """The form's host table, else the public hosts of its environment (None: production)."""
    if form.basware_hosts is not None:
        try:
            return BaswareHosts.model_validate_json(form.basware_hosts)
        except ValidationError as error:
            raise ConnectionInvalid.from_validation("the Basware host table", error) from None
    if form.basware_environment is BaswareEnvironment.PRODUCTION:
        return None
    return BaswareHosts.public(form.basware_environment)


def basware_credentials(form: ConnectionForm) -> BaswareCredentials:
    return BaswareCredentials(
        client_id=form.basware_client_id,
        client_secret=form.basware_client_secret,
        region=form.basware_region,
    )


def connection_of(
    form: ConnectionForm, region: BaswareRegion, hosts: BaswareHosts | None
) -> Connection:
    """The connection a form describes, its Basware region found."""
    if not form.entities:
        raise ConnectionInvalid("choose at least one entity to sync")
    try:
        return Connection(
            name=form.name,
            visma=VismaCredentials(
                client_id=form.visma_client_id,
                client_secret=form.visma_client_secret,
                tenant_id=form.visma_tenant_id,
                company_id=form.visma_company_id,
                scopes=tuple(form.visma_scopes.split()),
            ),
            visma_endpoints=VismaEndpoints(
                token_url=form.visma_token_url, api_base_url=form.visma_api_base_url
            ),
            visma_webhook_secret=form.visma_webhook_secret,
            basware=basware_credentials(form).model_copy(update={"region": region}),
            basware_hosts=hosts,
            basware_webhook_secret=form.basware_webhook_secret,
            basware_company_code=form.basware_company_code,
            basware_receiving_email=form.basware_receiving_email,
            entities=tuple(e for e in ALL_ENTITIES if e in form.entities),
            write_back=form.write_back,
        )
    except ValidationError as error:
        raise ConnectionInvalid.from_validation(f"connection {form.name!r}", error) from None


class EntitySchedule(BaseModel):
    entity: Entity
    # "every 5m", "cron */5 * * * * (UTC)"; None: the reader's default interval.
    schedule: str | None


class ConnectionView(BaseModel):
    name: str
    tenant: str
    enabled: bool
    visma_client_id: str
    visma_tenant_id: str
    visma_company_id: str
    visma_token_url: str
    visma_api_base_url: str
    basware_client_id: str
    basware_region: BaswareRegion | None
    basware_environment: BaswareEnvironment
    basware_company_code: str | None
    basware_receiving_email: str | None
    entities: list[Entity]
    write_back: bool
    schedules: list[EntitySchedule]
    # Which Visma segment becomes which Basware code (docs/basware-p2p.md §10.10).
    coding: CodingLayout
    # Which secrets are stored (field paths), never their values.
    secrets_set: list[str]


def connection_view(connection: Connection) -> ConnectionView:
    _, secrets = split_secrets(connection)
    return ConnectionView(
        name=connection.name,
        tenant=connection.tenant,
        enabled=connection.enabled,
        visma_client_id=connection.visma.client_id,
        visma_tenant_id=connection.visma.tenant_id,
        visma_company_id=connection.visma.company_id,
        visma_token_url=connection.visma_endpoints.token_url,
        visma_api_base_url=connection.visma_endpoints.api_base_url,
        basware_client_id=connection.basware.client_id,
        basware_region=connection.basware.region,
        basware_environment=connection.hosts.environment,
        basware_company_code=connection.basware_company_code,
        basware_receiving_email=connection.basware_receiving_email,
        entities=list(connection.entities),
        write_back=connection.write_back,
        schedules=[
            EntitySchedule(
                entity=e,
                schedule=str(connection.schedules[e]) if e in connection.schedules else None,
            )
            for e in connection.entities
        ],
        coding=connection.coding,
        secrets_set=sorted(secrets),
    )


class CodingForm(BaseModel):
    """A coding layout as `mlconnector connections coding` takes it: the dimension, and the
    segment that becomes each Basware code (none: that code is not sent)."""

    dimension_id: str = "SUBACCOUNT"
    cost_center: Annotated[int | None, Optional] = None
    project: Annotated[int | None, Optional] = None
    # dimCode n (1 to 10) -> the segment whose values become it (generic list ACC_LIST_n).
    dim_codes: dict[Annotated[int, Field(ge=1, le=10)], int] = Field(default_factory=dict)


def coding_of(form: CodingForm) -> CodingLayout:
    """The layout a form asks for; ValueError in plain words when it is not one."""
    try:
        return CodingLayout.placing(
            form.dimension_id,
            {
                SegmentTarget.COST_CENTER: form.cost_center,
                SegmentTarget.PROJECT: form.project,
                **{SegmentTarget.dim_code(n): s for n, s in form.dim_codes.items()},
            },
        )
    except ValidationError as error:
        raise ValueError(ConnectionInvalid.from_validation("coding", error).args[0]) from None


class ScheduleForm(BaseModel):
    """One entity's poll schedule: exactly one of an interval, a cron expression, or
    back to the default."""

    entity: Entity
    every: Annotated[str | None, Optional] = None
    cron: Annotated[str | None, Optional] = None
    default: bool = False


def schedule_of(form: ScheduleForm) -> IntervalSchedule | CronSchedule | None:
    """The schedule a form asks for; ValueError in plain words when it names none or two."""
    given = sum((form.every is not None, form.cron is not None, form.default))
    if given != 1:
        raise ValueError(
            "give exactly one: an interval (30s, 5m, 2h), a cron expression, or default"
        )
    try:
        if form.every is not None:
            return parse_every(form.every)
        if form.cron is not None:
            return CronSchedule(expression=form.cron)
    except ValidationError as error:
        raise ValueError(ConnectionInvalid.from_validation("schedule", error).args[0]) from None
    return None

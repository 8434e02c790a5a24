"""Checking a connection against the real systems: where its Basware credentials live, and ping.

`resolve_region` finds the region of Basware credentials with the one detector
(`mlconnector.basware.locate_region`), so that `connections add` refuses an unknown or
mismatched region before anything is stored. `ping` fetches a token from each side, makes one
harmless read on each, and compares clocks. Every failure is named as one `Problem`, so an
operator can tell a wrong secret from a wrong company, a wrong region, a skewed clock or an
unreachable host. Details never include a secret or a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import Mapping, Sequence
from typing import Literal

import httpx
import jwt
from pydantic import BaseModel, ConfigDict

from mlconnector.basware import (
    DEFAULT_SCOPES,
    BaswareClient,
    BaswareCredentials,
    BaswareError,
    BaswareHosts,
    BaswareRegion,
    BaswareUnavailable,
    locate_region,
    probe_regions,
)
from mlconnector.connections import Connection
from mlconnector.problems import Problem
from mlconnector.retry import Backoff
from mlconnector.visma import (
    VismaAuthError,
    VismaClient,
    VismaClientSettings,
    VismaCompanyError,
    VismaError,
    VismaNoLicenceError,
    VismaUnauthorizedError,
    VismaUnavailableError,
)

# Tokens are judged by their issuer's clock: a few seconds are harmless, minutes are not.
CLOCK_TOLERANCE_SECONDS = 30.0
TIMEOUT_SECONDS = 15.0


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    system: Literal["Visma", "Basware", "Clock"]
    step: Literal["token", "read", "time"]
    ok: bool
    problem: Problem | None = None
    detail: str


class PingReport(BaseModel):
    connection: str
    tenant: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


async def resolve_region(credentials: BaswareCredentials, hosts: BaswareHosts) -> BaswareRegion:
    """The credentials' region for `connections add`, asked with the scopes the services use;
    RegionUnresolved saying why there is none."""
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
        return (await probe_regions(http, credentials, hosts, DEFAULT_SCOPES)).region


class DateWatch(httpx.AsyncBaseTransport):
    """Records how far each server's Date header is from this machine's clock."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.offsets: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        stated = response.headers.get("date")
        if stated:
            # An unreadable Date header only means one clock reading less.
            with contextlib.suppress(TypeError, ValueError):
                self.offsets.append(
                    email.utils.parsedate_to_datetime(stated).timestamp() - time.time()
                )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def token_clock_offset(token: str) -> float | None:
    """How far in the future (positive) the token's `iat` lies by this machine's clock."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issued_at = claims.get("iat")
    return float(issued_at) - time.time() if isinstance(issued_at, int | float) else None


def clock_check(
    offsets: Mapping[str, Sequence[float]], tolerance: float = CLOCK_TOLERANCE_SECONDS
) -> Check:
    """One verdict from every clock reading (Date headers, token iat) per source."""
    worst = {source: max(readings, key=abs) for source, readings in offsets.items() if readings}
    if not worst:
        return Check(system="Clock", step="time", ok=True, detail="no server stated its time")
    skewed = {s: o for s, o in worst.items() if abs(o) > tolerance}
    if not skewed:
        return Check(
            system="Clock",
            step="time",
            ok=True,
            detail=f"this machine agrees with {', '.join(worst)} within {tolerance:.0f} s",
        )
    said = "; ".join(
        f"{source} is {abs(o):.0f} s {'ahead of' if o > 0 else 'behind'} this machine"
        for source, o in skewed.items()
    )
    return Check(
        system="Clock",
        step="time",
        ok=False,
        problem=Problem.CLOCK_SKEW,
        detail=f"{said}: tokens may look expired or not yet valid; sync the clock (NTP)",
    )


def _visma_problem(error: VismaError) -> Problem:
    if isinstance(error, VismaUnavailableError):
        return Problem.UNREACHABLE
    if isinstance(error, VismaNoLicenceError | VismaCompanyError | VismaUnauthorizedError):
        return Problem.WRONG_COMPANY
    if isinstance(error, VismaAuthError):
        if error.fault_code == "invalid_client":
            return Problem.WRONG_SECRET
        if error.fault_code in ("invalid_tenant", "invalid_grant"):
            return Problem.WRONG_COMPANY
    return Problem.REFUSED


async def _ping_visma(connection: Connection, clocks: list[float]) -> list[Check]:
    watch = DateWatch()
    # One quick retry only: ping answers in seconds, it does not wait out an outage.
    settings = VismaClientSettings(
        timeout_seconds=TIMEOUT_SECONDS, backoff=Backoff(base_seconds=0.2, max_attempts=2)
    )
    credentials = connection.visma
    checks: list[Check] = []
    try:
        async with VismaClient(
            credentials, connection.visma_endpoints, settings, transport=watch
        ) as client:
            try:
                token = await client.tokens.get()
            except VismaError as error:
                return [
                    Check(
                        system="Visma",
                        step="token",
                        ok=False,
                        problem=_visma_problem(error),
                        detail=str(error),
                    )
                ]
            offset = token_clock_offset(token)
            if offset is not None:
                clocks.append(offset)
            checks.append(
                Check(
                    system="Visma",
                    step="token",
                    ok=True,
                    detail=f"Visma Connect issued a token to client {credentials.client_id} "
                    f"for tenant {credentials.tenant_id}",
                )
            )
            try:
                await client.ping()
            except VismaError as error:
                checks.append(
                    Check(
                        system="Visma",
                        step="read",
                        ok=False,
                        problem=_visma_problem(error),
                        detail=str(error),
                    )
                )
            else:
                checks.append(
                    Check(
                        system="Visma",
                        step="read",
                        ok=True,
                        detail=f"read a supplier of company {credentials.company_id}",
                    )
                )
    finally:
        clocks.extend(watch.offsets)
    return checks


def _basware_problem(error: BaswareError) -> Problem:
    if isinstance(error, BaswareUnavailable) and error.status is None:
        return Problem.UNREACHABLE
    return Problem.REFUSED


async def _ping_basware(connection: Connection, clocks: list[float]) -> list[Check]:
    watch = DateWatch()
    try:
        async with httpx.AsyncClient(transport=watch, timeout=TIMEOUT_SECONDS) as http:
            verdict = await locate_region(
                connection.basware, connection.hosts, http=http, scopes=DEFAULT_SCOPES
            )
            if verdict.region is None:
                return [
                    Check(
                        system="Basware",
                        step="token",
                        ok=False,
                        problem=verdict.problem,
                        detail=verdict.detail,
                    )
                ]
            credentials = connection.basware.model_copy(update={"region": verdict.region})
            async with BaswareClient(credentials, connection.hosts, http=http) as client:
                try:
                    token = await client.tokens.get()
                except BaswareError as error:
                    return [
                        Check(
                            system="Basware",
                            step="token",
                            ok=False,
                            problem=_basware_problem(error),
                            detail=str(error),
                        )
                    ]
                offset = token_clock_offset(token)
                if offset is not None:
                    clocks.append(offset)
                checks = [Check(system="Basware", step="token", ok=True, detail=verdict.detail)]
                try:
                    await client.ping()
                except BaswareError as error:
                    checks.append(
                        Check(
                            system="Basware",
                            step="read",
                            ok=False,
                            problem=_basware_problem(error),
                            detail=str(error),
                        )
                    )
                else:
                    checks.append(
                        Check(
                            system="Basware",
                            step="read",
                            ok=True,
                            detail=f"read the vendor list in {verdict.region.value}",
                        )
                    )
                return checks
    finally:
        clocks.extend(watch.offsets)


async def ping(
    connection: Connection, *, clock_tolerance: float = CLOCK_TOLERANCE_SECONDS
) -> PingReport:
    """Both sides at once, then the clocks."""
    visma_clock: list[float] = []
    basware_clock: list[float] = []
    visma, basware = await asyncio.gather(
        _ping_visma(connection, visma_clock),
        _ping_basware(connection, basware_clock),
    )
    clock = clock_check({"Visma": visma_clock, "Basware": basware_clock}, clock_tolerance)
    return PingReport(
        connection=connection.name, tenant=connection.tenant, checks=[*visma, *basware, clock]
    )

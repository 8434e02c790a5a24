"""Basware OAuth2 client credentials: tokens, and which region a credential belongs to.

A credential works only on the host that issued it, and nothing in it names the region. The
region is found by asking the regional token endpoints for a token with the scopes the caller
will use; exactly one may accept, and the token it issues must carry that host's issuer
(`iss`). `locate_region` is the one detector: the client (`probe_regions`), `connections add`
and `ping` all take its verdict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import httpx
import jwt
from pydantic import BaseModel, Field, SecretStr

from mlconnector.basware.errors import (
    BaswareAuthError,
    BaswareError,
    BaswareUnavailable,
    error_for,
    transport_error,
)
from mlconnector.basware.models import TokenClaims, TokenResponse
from mlconnector.basware.regions import BaswareHost, BaswareHosts, BaswareRegion
from mlconnector.problems import Problem
from mlconnector.tokens import AccessToken


class BaswareCredentials(BaseModel):
    """An API client provisioned by Basware; region None means "detect it"."""

    client_id: str
    client_secret: SecretStr
    region: BaswareRegion | None = None


class IssuedToken(BaseModel):
    token: AccessToken
    claims: TokenClaims
    # Seconds the issuer's clock is ahead of ours when the token was received.
    clock_skew: float | None = None


def _same_issuer(left: str, right: str) -> bool:
    return left.rstrip("/").lower() == right.rstrip("/").lower()


async def fetch_token(
    http: httpx.AsyncClient,
    host: BaswareHost,
    credentials: BaswareCredentials,
    scopes: Sequence[str],
) -> IssuedToken:
    """A token from one host's token endpoint, checked to come from that host's issuer."""
    call = "POST /v1/tokens"
    try:
        response = await http.post(
            f"{host.base_url}/v1/tokens",
            data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
            auth=httpx.BasicAuth(
                credentials.client_id, credentials.client_secret.get_secret_value()
            ),
        )
    except httpx.TransportError as exc:
        raise transport_error(exc, call) from None
    if response.status_code != 200:
        error = error_for(response, call)
        if response.status_code in (400, 422):
            raise BaswareAuthError(
                str(error), status=response.status_code, reason="invalid_request"
            )
        if response.status_code == 401:
            raise BaswareAuthError(str(error), status=401, reason="invalid_client")
        raise error
    issued = TokenResponse.model_validate_json(response.content)
    value = issued.access_token.get_secret_value()
    try:
        # Only the claims are read here; the token is checked by Basware on every call.
        claims = TokenClaims.model_validate(jwt.decode(value, options={"verify_signature": False}))
    except (jwt.PyJWTError, ValueError) as exc:
        raise BaswareAuthError(f"Basware {call}: the token is not a readable JWT") from exc
    if not _same_issuer(claims.iss, host.issuer):
        raise BaswareAuthError(
            f"Basware {call}: token issued by {claims.iss}, expected {host.issuer}",
            reason="issuer_mismatch",
        )
    now = time.time()
    return IssuedToken(
        token=AccessToken.from_lifetime(value, issued.expires_in, issued.scope),
        claims=claims,
        clock_skew=None if claims.iat is None else claims.iat - now,
    )


# What one regional token endpoint answered: a token, or why not.
TokenAnswer = IssuedToken | BaswareError


class RegionVerdict(BaseModel):
    """Where the Basware credentials belong, or the problem that prevents knowing."""

    region: BaswareRegion | None = None
    issuer: str | None = None
    tenant: str | None = None
    problem: Problem | None = None
    detail: str
    # The token the region issued while it was asked: a client's token cache starts with it.
    issued: IssuedToken | None = Field(default=None, exclude=True, repr=False)


class RegionUnresolved(BaswareAuthError):
    """No region can be settled for the credentials; `verdict` says why, in plain words."""

    def __init__(self, verdict: RegionVerdict) -> None:
        super().__init__(f"{verdict.problem}: {verdict.detail}", reason="no_region")
        self.verdict = verdict


def _reason(error: BaswareError) -> str | None:
    return error.reason if isinstance(error, BaswareAuthError) else None


def _found(region: BaswareRegion, token: IssuedToken, detail: str) -> RegionVerdict:
    return RegionVerdict(
        region=region,
        issuer=token.claims.iss,
        tenant=token.claims.bwcid,
        issued=token,
        detail=f"{detail} (issuer {token.claims.iss}, Basware tenant {token.claims.bwcid})",
    )


def region_verdict(
    configured: BaswareRegion | None, answers: Mapping[BaswareRegion, TokenAnswer]
) -> RegionVerdict:
    """Judges what each asked region answered for one credential. A configured region pins
    the answer: credentials valid only elsewhere are a wrong region, not that other region."""
    accepted = {r: a for r, a in answers.items() if isinstance(a, IssuedToken)}
    errors = {r: a for r, a in answers.items() if isinstance(a, BaswareError)}
    refusals = "; ".join(f"{r.value}: {e}" for r, e in errors.items())
    if configured is not None and configured in accepted:
        return _found(
            configured,
            accepted[configured],
            f"region {configured.value} accepts the credentials",
        )
    if configured is not None and accepted:
        found = ", ".join(r.value for r in accepted)
        return RegionVerdict(
            problem=Problem.WRONG_REGION,
            detail=f"the credentials are valid in {found}, not in the configured region "
            f"{configured.value}",
        )
    if configured is not None:
        error = errors[configured]
        if isinstance(error, BaswareUnavailable):
            problem = Problem.UNREACHABLE
        elif _reason(error) == "issuer_mismatch":
            problem = Problem.WRONG_REGION
        elif _reason(error) == "invalid_client":
            problem = Problem.WRONG_SECRET
        else:
            problem = Problem.REFUSED
        return RegionVerdict(problem=problem, detail=f"{configured.value}: {error}")
    if len(accepted) == 1:
        region, token = next(iter(accepted.items()))
        return _found(region, token, f"the credentials belong to region {region.value}")
    if accepted:
        found = ", ".join(r.value for r in accepted)
        return RegionVerdict(
            problem=Problem.REFUSED,
            detail=f"several regions accept the credentials ({found}); configure the region",
        )
    if any(isinstance(e, BaswareUnavailable) for e in errors.values()):
        return RegionVerdict(
            problem=Problem.UNREACHABLE,
            detail=f"no region accepted the credentials and some could not be asked: {refusals}",
        )
    if all(_reason(e) == "invalid_client" for e in errors.values()):
        return RegionVerdict(
            problem=Problem.WRONG_SECRET,
            detail=f"no configured region accepts client id and secret ({refusals})",
        )
    return RegionVerdict(problem=Problem.REFUSED, detail=refusals)


async def _ask(
    http: httpx.AsyncClient,
    credentials: BaswareCredentials,
    hosts: BaswareHosts,
    regions: Sequence[BaswareRegion],
    scopes: Sequence[str],
) -> dict[BaswareRegion, TokenAnswer]:
    answers = await asyncio.gather(
        *(fetch_token(http, hosts.host(r), credentials, scopes) for r in regions),
        return_exceptions=True,
    )
    found: dict[BaswareRegion, TokenAnswer] = {}
    for region, answer in zip(regions, answers, strict=True):
        if isinstance(answer, IssuedToken | BaswareError):
            found[region] = answer
        else:
            raise answer
    return found


async def locate_region(
    credentials: BaswareCredentials,
    hosts: BaswareHosts,
    *,
    http: httpx.AsyncClient,
    scopes: Sequence[str],
) -> RegionVerdict:
    """Asks the configured region (or, when it refuses the client or none is configured,
    every region) for a token with `scopes`, and judges the answers."""
    configured = credentials.region
    if configured is not None and configured not in hosts.hosts:
        return RegionVerdict(
            problem=Problem.WRONG_REGION,
            detail=f"no Basware host is configured for region {configured.value}",
        )
    answers: dict[BaswareRegion, TokenAnswer] = {}
    if configured is not None:
        answers = await _ask(http, credentials, hosts, [configured], scopes)
        answer = answers[configured]
        if isinstance(answer, IssuedToken) or _reason(answer) != "invalid_client":
            return region_verdict(configured, answers)
    others = [r for r in hosts.hosts if r not in answers]
    answers |= await _ask(http, credentials, hosts, others, scopes)
    return region_verdict(configured, answers)


class RegionProbe(BaseModel):
    region: BaswareRegion
    issued: IssuedToken


async def probe_regions(
    http: httpx.AsyncClient,
    credentials: BaswareCredentials,
    hosts: BaswareHosts,
    scopes: Sequence[str],
) -> RegionProbe:
    """The credentials' region and the token it issued; RegionUnresolved saying why not."""
    verdict = await locate_region(credentials, hosts, http=http, scopes=scopes)
    if verdict.region is None or verdict.issued is None:
        raise RegionUnresolved(verdict)
    return RegionProbe(region=verdict.region, issued=verdict.issued)

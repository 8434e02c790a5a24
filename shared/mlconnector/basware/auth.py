"""Basware OAuth2 client credentials: tokens, and which region a credential belongs to.

A credential works only on the host that issued it, and nothing in it names the region. The
region is found by asking every configured regional token endpoint; exactly one may accept,
and the token it issues must carry that host's issuer (`iss`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx
import jwt
from pydantic import BaseModel, SecretStr

from mlconnector.basware.errors import BaswareAuthError, BaswareError, error_for, transport_error
from mlconnector.basware.models import TokenClaims, TokenResponse
from mlconnector.basware.regions import BaswareHost, BaswareHosts, BaswareRegion
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


class RegionProbe(BaseModel):
    region: BaswareRegion
    issued: IssuedToken


async def probe_regions(
    http: httpx.AsyncClient,
    credentials: BaswareCredentials,
    hosts: BaswareHosts,
    scopes: Sequence[str],
) -> RegionProbe:
    """Asks every configured region for a token; exactly one must accept."""
    regions = list(hosts.hosts)
    outcomes = await asyncio.gather(
        *(fetch_token(http, hosts.hosts[r], credentials, scopes) for r in regions),
        return_exceptions=True,
    )
    accepted: list[RegionProbe] = []
    refusals: list[str] = []
    for region, outcome in zip(regions, outcomes, strict=True):
        if isinstance(outcome, IssuedToken):
            accepted.append(RegionProbe(region=region, issued=outcome))
        elif isinstance(outcome, BaswareError):
            refusals.append(f"{region.value}: {getattr(outcome, 'reason', None) or outcome}")
        else:
            raise outcome
    if len(accepted) == 1:
        return accepted[0]
    if not accepted:
        raise BaswareAuthError(
            "no configured Basware region accepts these credentials ("
            + "; ".join(refusals)
            + "): wrong client id or secret, or credentials of another environment",
            reason="no_region",
        )
    names = ", ".join(p.region.value for p in accepted)
    raise BaswareAuthError(
        f"credentials accepted by several Basware regions ({names}); configure the region",
        reason="ambiguous_region",
    )


async def detect_region(
    credentials: BaswareCredentials,
    hosts: BaswareHosts,
    *,
    scopes: Sequence[str] = ("vendors.read",),
    http: httpx.AsyncClient | None = None,
) -> BaswareRegion:
    """The region whose token endpoint accepts the credentials (cross-checked with `iss`)."""
    if http is not None:
        return (await probe_regions(http, credentials, hosts, scopes)).region
    async with httpx.AsyncClient(timeout=30.0) as own:
        return (await probe_regions(own, credentials, hosts, scopes)).region

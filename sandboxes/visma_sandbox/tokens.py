"""Visma Connect access tokens: RS256 JWTs bound to one tenant, i.e. one company.

The sandbox keeps every grant it issued, so the back door can expire or revoke them and the
API can tell an expired token from a forged one. Verified tokens are cached: checking an RS256
signature on every call would dominate the cost of a small GET.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://connect.visma.com"
AUDIENCE = "vismanet_erp_service_api"


@dataclass(slots=True)
class TokenGrant:
    jti: str
    client_id: str
    tenant_id: str
    # The company the tenant stands for; None for a customer tenant (no ERP licence).
    company_id: str | None
    scopes: frozenset[str]
    issued_at: float
    expires_at: float
    revoked: bool = False

    def usable(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


class TokenIssuer:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, TokenGrant] = {}
        self._by_token: dict[str, TokenGrant] = {}

    def issue(
        self,
        *,
        client_id: str,
        tenant_id: str,
        company_id: str | None,
        scopes: frozenset[str],
        lifetime: float,
    ) -> str:
        now = time.time()
        grant = TokenGrant(
            jti=uuid.uuid4().hex,
            client_id=client_id,
            tenant_id=tenant_id,
            company_id=company_id,
            scopes=scopes,
            issued_at=now,
            expires_at=now + lifetime,
        )
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "client_id": client_id,
            "tenant_id": tenant_id,
            "scope": sorted(scopes),
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + lifetime) + 1,
            "jti": grant.jti,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "sandbox"})
        self._grants[grant.jti] = grant
        return token

    def verify(self, token: str) -> TokenGrant | None:
        """The grant behind a usable token; None if it is unknown, forged, expired or revoked."""
        grant = self._by_token.get(token)
        if grant is None:
            try:
                claims = jwt.decode(
                    token,
                    self._key.public_key(),
                    algorithms=["RS256"],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    options={"verify_exp": False},  # the grant's own clock is authoritative
                )
            except jwt.InvalidTokenError:
                return None
            grant = self._grants.get(str(claims.get("jti")))
            if grant is None:
                return None
            self._by_token[token] = grant
        return grant if grant.usable(time.time()) else None

    def end(
        self, *, revoke: bool, tenant_id: str | None = None, client_id: str | None = None
    ) -> int:
        """Expires (or revokes) every matching grant now; returns how many were live."""
        now = time.time()
        ended = 0
        for grant in self._grants.values():
            if tenant_id not in (None, grant.tenant_id) or client_id not in (None, grant.client_id):
                continue
            if grant.usable(now):
                ended += 1
            grant.expires_at = min(grant.expires_at, now)
            grant.revoked = grant.revoked or revoke
        return ended

    def clear(self) -> None:
        self._grants.clear()
        self._by_token.clear()

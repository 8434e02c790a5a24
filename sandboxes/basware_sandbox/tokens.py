"""The sandbox's token issuer: RS256 JWTs shaped like Basware's sample token.

Each virtual host is its own issuer (`iss` = https://<host>), so a token or a credential is
good only on the host that issued it. Expiry is checked against the sandbox clock, which tests
can move forward.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import BaseModel

from basware_sandbox.config import VirtualHost

AUDIENCE = "OpenAPI"

_APIS_WITH_DELETE = [
    *("accountingDocuments", "accounts", "advancedPermissions", "advancedValidations"),
    *("contracts", "costCenters", "errorFeedbacks", "exchangeRates", "exportedContractSpends"),
    *("exportedContracts", "exportedPurchaseOrders", "exportedPurchaseRequisitions", "lists"),
    *("matchingOrderLines", "matchingOrders", "paymentTerms", "projects", "purchaseGoodsReceipts"),
    *("purchaseOrders", "purchaseRequisitions", "subscriptions", "taxCodes", "users", "vendors"),
    *("userGroups", "userGroupAssociatedUsers"),
]
# The P2P file's 80 scopes, plus user groups (user-permission API) and SmartPDF's upload scope.
KNOWN_SCOPES: frozenset[str] = frozenset(
    [f"{api}.{verb}" for api in _APIS_WITH_DELETE for verb in ("read", "write", "delete")]
    + [
        f"{api}.{verb}"
        for api in ("applicationGroups", "companies", "requestStatus")
        for verb in ("read", "write")
    ]
    + ["tasks.read", "taskStatus.read", "importDocuments.write"]
)


class TokenClaims(BaseModel):
    sub: str
    scope: str
    iss: str
    aud: str
    iat: int
    exp: int
    auth_time: int
    jti: str
    bwcid: str

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


class TokenIssuer:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._key.public_key().public_numbers()
        self.kid = hashlib.sha256(str(public_der.n).encode()).hexdigest()[:43]

    def issue(
        self, host: VirtualHost, client_id: str, bwcid: str, scope: str, *, now: int, lifetime: int
    ) -> str:
        claims = TokenClaims(
            sub=client_id,
            scope=scope,
            iss=host.issuer,
            aud=AUDIENCE,
            iat=now,
            exp=now + lifetime,
            auth_time=now,
            jti=str(uuid.uuid4()),
            bwcid=bwcid,
        )
        return jwt.encode(
            claims.model_dump(),
            self._key,
            algorithm="RS256",
            headers={"kid": self.kid, "typ": "at+jwt"},
        )

    def verify(self, token: str, host: VirtualHost, *, now: int) -> TokenClaims | None:
        """The claims of a token this host issued and that has not expired; None otherwise."""
        try:
            decoded = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=host.issuer,
                # Expiry is judged by the sandbox clock below, not the machine's.
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        claims = TokenClaims.model_validate(decoded)
        return claims if now < claims.exp else None

    def jwks(self) -> dict[str, Any]:
        key: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

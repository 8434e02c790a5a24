"""OAuth2 client-credentials tokens: one cached token per credential, fetched again on expiry.

Neither Visma Connect nor Basware issues refresh tokens to client-credentials apps, so an
expiring token is simply replaced by a new one. A lock per cache makes sure concurrent
callers wait for one token request instead of each starting their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx
from pydantic import BaseModel, SecretStr


class AccessToken(BaseModel):
    """A bearer token and the monotonic time at which it stops being usable."""

    value: SecretStr
    expires_at: float
    lifetime: float
    scope: str = ""

    @classmethod
    def from_lifetime(
        cls, value: str, expires_in: float, scope: str = "", *, now: float | None = None
    ) -> AccessToken:
        start = time.monotonic() if now is None else now
        return cls(
            value=SecretStr(value), expires_at=start + expires_in, lifetime=expires_in, scope=scope
        )


TokenFetcher = Callable[[], Awaitable[AccessToken]]


class TokenCache:
    """Holds one token for one credential and fetches a new one shortly before it expires."""

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    def _usable(self, token: AccessToken | None) -> bool:
        if token is None:
            return False
        # Short-lived tokens (Basware allows 5 minutes) must not be refreshed on every
        # call, so the margin never exceeds a tenth of the token's lifetime.
        margin = min(self._refresh_margin, token.lifetime / 10)
        return self._clock() < token.expires_at - margin

    async def get(self) -> str:
        token = self._token
        if not self._usable(token):
            async with self._lock:
                token = self._token
                if not self._usable(token):
                    token = await self._fetch()
                    self.fetch_count += 1
                    self._token = token
        assert token is not None
        return token.value.get_secret_value()

    def invalidate(self, rejected: str) -> None:
        """Drops the cached token after a 401, unless another caller already replaced it."""
        if self._token is not None and self._token.value.get_secret_value() == rejected:
            self._token = None


class BearerAuth(httpx.Auth):
    """Signs each request with the cached token; on a 401, fetches a new token and retries once."""

    def __init__(self, tokens: TokenCache) -> None:
        self._tokens = tokens

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("BearerAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._tokens.get()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            self._tokens.invalidate(token)
            request.headers["Authorization"] = f"Bearer {await self._tokens.get()}"
            yield request

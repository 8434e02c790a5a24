"""Basware's regional hosts. Credentials work only on the host that issued them, and nothing in
them names the region, so the host table is configuration and the region is detected.

Only api.basware.com (EU production), test-api.basware.com (EU test) and
test-api.us.basware.com (US test) appear in public material; the other names follow the
pattern and are unverified, which is why they can be overridden.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class BaswareRegion(StrEnum):
    EU = "EU"
    US = "US"
    AU = "AU"
    CA = "CA"


class BaswareEnvironment(StrEnum):
    PRODUCTION = "production"
    TEST = "test"


class BaswareHost(BaseModel):
    """Where a region's API answers, and the `iss` its tokens carry (the public host URL).

    The two differ when the host is reached through a proxy or a local sandbox.
    """

    model_config = ConfigDict(frozen=True)

    base_url: str
    issuer: str

    @classmethod
    def public(cls, name: str) -> BaswareHost:
        return cls(base_url=f"https://{name}", issuer=f"https://{name}")


_PUBLIC_NAMES: dict[BaswareEnvironment, dict[BaswareRegion, str]] = {
    BaswareEnvironment.PRODUCTION: {
        BaswareRegion.EU: "api.basware.com",
        BaswareRegion.US: "api.us.basware.com",
        BaswareRegion.AU: "api.au.basware.com",
        BaswareRegion.CA: "api.ca.basware.com",
    },
    BaswareEnvironment.TEST: {
        BaswareRegion.EU: "test-api.basware.com",
        BaswareRegion.US: "test-api.us.basware.com",
        BaswareRegion.AU: "test-api.au.basware.com",
        BaswareRegion.CA: "test-api.ca.basware.com",
    },
}


class BaswareHosts(BaseModel):
    """The regional hosts of one environment (production or test) that a deployment talks to."""

    model_config = ConfigDict(frozen=True)

    environment: BaswareEnvironment = BaswareEnvironment.PRODUCTION
    hosts: dict[BaswareRegion, BaswareHost] = Field(min_length=1)

    @classmethod
    def public(
        cls, environment: BaswareEnvironment = BaswareEnvironment.PRODUCTION
    ) -> BaswareHosts:
        names = _PUBLIC_NAMES[environment]
        return cls(
            environment=environment,
            hosts={region: BaswareHost.public(name) for region, name in names.items()},
        )

    def host(self, region: BaswareRegion) -> BaswareHost:
        try:
            return self.hosts[region]
        except KeyError:
            raise KeyError(f"no Basware host configured for region {region}") from None

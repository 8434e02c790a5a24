"""The pure parts of ping: judging regional answers and clock readings."""

from __future__ import annotations

import time

import jwt
import pytest

from mlconnector.basware import (
    BaswareAuthError,
    BaswareRegion,
    BaswareUnavailable,
    IssuedToken,
    TokenAnswer,
    region_verdict,
)
from mlconnector.basware.models import TokenClaims
from mlconnector.connection_checks import clock_check, token_clock_offset
from mlconnector.problems import Problem
from mlconnector.tokens import AccessToken

EU, US, AU = BaswareRegion.EU, BaswareRegion.US, BaswareRegion.AU


def token(issuer: str, tenant: str = "T1") -> IssuedToken:
    return IssuedToken(
        token=AccessToken.from_lifetime("opaque", 3600),
        claims=TokenClaims(iss=issuer, bwcid=tenant),
    )


def refused() -> BaswareAuthError:
    return BaswareAuthError(
        "Basware POST /v1/tokens: HTTP 401", status=401, reason="invalid_client"
    )


def unreachable() -> BaswareUnavailable:
    return BaswareUnavailable("Basware POST /v1/tokens: no answer (ConnectError)")


@pytest.mark.parametrize(
    ("configured", "outcomes", "region", "problem"),
    [
        (None, {EU: refused(), US: token("https://api.us.basware.com")}, US, None),
        (EU, {EU: token("https://api.basware.com")}, EU, None),
        (EU, {EU: refused(), US: token("https://api.us.basware.com"), AU: refused()}, None,
         Problem.WRONG_REGION),
        (EU, {EU: refused(), US: refused()}, None, Problem.WRONG_SECRET),
        (None, {EU: refused(), US: refused()}, None, Problem.WRONG_SECRET),
        (EU, {EU: unreachable()}, None, Problem.UNREACHABLE),
        (None, {EU: refused(), US: unreachable()}, None, Problem.UNREACHABLE),
        (None, {EU: token("https://a"), US: token("https://b")}, None, Problem.REFUSED),
        (EU, {EU: BaswareAuthError("iss", reason="issuer_mismatch"), US: refused()}, None,
         Problem.WRONG_REGION),
        (EU, {EU: BaswareAuthError("scope", status=400, reason="invalid_request")}, None,
         Problem.REFUSED),
    ],
)  # fmt: skip
def test_region_verdict(
    configured: BaswareRegion | None,
    outcomes: dict[BaswareRegion, TokenAnswer],
    region: BaswareRegion | None,
    problem: Problem | None,
) -> None:
    verdict = region_verdict(configured, outcomes)
    assert (verdict.region, verdict.problem) == (region, problem)


def test_a_wrong_region_verdict_names_both_regions() -> None:
    verdict = region_verdict(EU, {EU: refused(), US: token("https://api.us.basware.com")})
    assert verdict.detail == "the credentials are valid in US, not in the configured region EU"


def test_clock_within_tolerance_is_fine_and_beyond_it_names_the_side() -> None:
    assert clock_check({"Visma": [0.4, -1.0], "Basware": [2.0]}, tolerance=30).ok
    check = clock_check({"Visma": [0.4], "Basware": [1.0, 95.0]}, tolerance=30)
    assert not check.ok
    assert check.problem is Problem.CLOCK_SKEW
    assert "Basware is 95 s ahead of this machine" in check.detail
    assert "Visma" not in check.detail
    behind = clock_check({"Visma": [-120.0]}, tolerance=30)
    assert "Visma is 120 s behind this machine" in behind.detail


def test_no_clock_reading_is_not_a_failure() -> None:
    assert clock_check({"Visma": [], "Basware": []}).ok


def test_token_clock_offset_reads_iat() -> None:
    future = jwt.encode({"iat": int(time.time()) + 300}, "k" * 32, algorithm="HS256")
    offset = token_clock_offset(future)
    assert offset is not None
    assert 298 <= offset <= 301
    assert token_clock_offset("not a jwt") is None

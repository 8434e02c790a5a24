"""Signature checks of the webhook gateway: pure functions, no server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from mlconnector.basware import BaswareCredentials
from mlconnector.connections import Connection, StaticConnectionSource
from mlconnector.vault import VaultError
from mlconnector.visma import VismaCredentials
from webhook_gateway.answers import Reason, Refused
from webhook_gateway.secret_source import (
    ConfiguredSecrets,
    ConnectionSecrets,
    TenantSecrets,
    WebhookSecret,
    valid_keys,
)
from webhook_gateway.verify import SignatureEncoding, SignatureScheme, sign, verify_signature

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY = b"current-secret"
OLD_KEY = b"previous-secret"
BODY = b'{"taskId":"t-1","taskStatus":"New","taskType":"AccountingDocuments","documentId":"d1"}'
HEX = SignatureScheme(header="x-bwapi-signature-256", encoding=SignatureEncoding.HEX)
PREFIXED_B64 = SignatureScheme(
    header="x-signature", encoding=SignatureEncoding.BASE64, prefix="sha256="
)
TIMED = HEX.model_copy(update={"timestamp_header": "x-timestamp"})


def refusal(headers: dict[str, str], scheme: SignatureScheme, body: bytes = BODY) -> Reason:
    with pytest.raises(Refused) as caught:
        verify_signature(headers, body, [KEY], scheme, NOW)
    return caught.value.reason


def test_default_recipe_is_lowercase_hex_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(KEY, BODY, hashlib.sha256).hexdigest()
    assert sign(KEY, BODY, HEX) == expected
    verify_signature({"x-bwapi-signature-256": expected}, BODY, [KEY], HEX, NOW)


def test_uppercase_hex_is_the_same_signature() -> None:
    verify_signature({"x-bwapi-signature-256": sign(KEY, BODY, HEX).upper()}, BODY, [KEY], HEX, NOW)


def test_base64_with_prefix() -> None:
    digest = hmac.new(KEY, BODY, hashlib.sha256).digest()
    value = "sha256=" + base64.b64encode(digest).decode()
    assert sign(KEY, BODY, PREFIXED_B64) == value
    verify_signature({"x-signature": value}, BODY, [KEY], PREFIXED_B64, NOW)


def test_missing_prefix_is_a_bad_signature() -> None:
    value = sign(KEY, BODY, PREFIXED_B64).removeprefix("sha256=")
    assert refusal({"x-signature": value}, PREFIXED_B64) is Reason.BAD_SIGNATURE


def test_body_changed_by_one_byte_is_refused() -> None:
    changed = BODY.replace(b"d1", b"d2")
    headers = {"x-bwapi-signature-256": sign(KEY, BODY, HEX)}
    assert refusal(headers, HEX, changed) is Reason.BAD_SIGNATURE


def test_wrong_secret_is_refused() -> None:
    headers = {"x-bwapi-signature-256": sign(b"other", BODY, HEX)}
    assert refusal(headers, HEX) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize("value", ["", "zz", "not hex at all", sign(KEY, BODY, HEX)[:-2]])
def test_garbage_or_truncated_signature_is_refused(value: str) -> None:
    assert refusal({"x-bwapi-signature-256": value}, HEX) is Reason.BAD_SIGNATURE


def test_missing_header_is_refused() -> None:
    assert refusal({"x-other": sign(KEY, BODY, HEX)}, HEX) is Reason.MISSING_SIGNATURE


def test_no_key_verifies_nothing() -> None:
    with pytest.raises(Refused):
        verify_signature({"x-bwapi-signature-256": sign(KEY, BODY, HEX)}, BODY, [], HEX, NOW)


def test_any_of_several_keys_verifies() -> None:
    headers = {"x-bwapi-signature-256": sign(OLD_KEY, BODY, HEX)}
    verify_signature(headers, BODY, [KEY, OLD_KEY], HEX, NOW)


def timed_headers(at: datetime, *, millis: bool = False) -> dict[str, str]:
    stamp = str(int(at.timestamp() * (1000 if millis else 1)))
    return {"x-bwapi-signature-256": sign(KEY, BODY, TIMED, stamp), "x-timestamp": stamp}


def test_timestamp_is_signed_with_the_body() -> None:
    stamp = str(int(NOW.timestamp()))
    expected = hmac.new(KEY, f"{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert timed_headers(NOW)["x-bwapi-signature-256"] == expected
    verify_signature(timed_headers(NOW - timedelta(minutes=4)), BODY, [KEY], TIMED, NOW)


def test_epoch_milliseconds_are_understood() -> None:
    verify_signature(timed_headers(NOW, millis=True), BODY, [KEY], TIMED, NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_timestamp_outside_tolerance_is_stale(skew: timedelta) -> None:
    assert refusal(timed_headers(NOW + skew), TIMED) is Reason.STALE_TIMESTAMP


def test_timestamp_changed_after_signing_is_a_bad_signature() -> None:
    headers = timed_headers(NOW)
    headers["x-timestamp"] = str(int(NOW.timestamp()) + 1)
    assert refusal(headers, TIMED) is Reason.BAD_SIGNATURE


def test_missing_or_malformed_timestamp_is_refused() -> None:
    headers = timed_headers(NOW)
    stamp = headers.pop("x-timestamp")
    assert refusal(headers, TIMED) is Reason.MISSING_TIMESTAMP
    iso = NOW.isoformat()
    signed = {"x-bwapi-signature-256": sign(KEY, BODY, TIMED, iso), "x-timestamp": iso}
    assert stamp.isdigit()
    assert refusal(signed, TIMED) is Reason.BAD_TIMESTAMP


def test_retired_secret_is_valid_for_the_overlap_only() -> None:
    secrets = [
        WebhookSecret(value=SecretStr("new")),
        WebhookSecret(value=SecretStr("old"), retired_at=NOW - timedelta(hours=1)),
    ]
    assert valid_keys(secrets, NOW, timedelta(hours=2)) == [b"new", b"old"]
    assert valid_keys(secrets, NOW, timedelta(minutes=30)) == [b"new"]


async def test_configured_secrets_name_tenants_and_star_never_makes_one_known() -> None:
    own = [WebhookSecret(value=SecretStr("acme-secret"))]
    shared = [WebhookSecret(value=SecretStr("shared-secret"))]
    source = ConfiguredSecrets(basware={"acme": own, "*": shared}, visma={})
    assert await source.basware("acme") == TenantSecrets(tenant="acme", secrets=tuple(own))
    # "*" once accepted one signed body for any path tenant, ".." and "evil-tenant" included.
    for stranger in ("globex", "..", "evil-tenant", "*"):
        assert await source.basware(stranger) is None
    assert source.basware_for_connection("globex") == tuple(shared)
    assert source.basware_for_connection("acme") == tuple(own)
    assert await source.visma("acme") is None
    for shown in (repr(source), repr(own), str(own[0])):
        assert "acme-secret" not in shown


def connection(company_id: str, visma_tenant_id: str, **secrets: str) -> Connection:
    return Connection(
        name=f"c{company_id}",
        visma=VismaCredentials(
            client_id="v",
            client_secret=SecretStr("v-secret"),
            tenant_id=visma_tenant_id,
            company_id=company_id,
        ),
        basware=BaswareCredentials(client_id="b", client_secret=SecretStr("b-secret")),
        **{name: SecretStr(value) for name, value in secrets.items()},
    )


async def test_connection_secrets_map_visma_tenant_ids_to_companies() -> None:
    loads = 0
    connections = [
        connection(
            "1000001", "tenant-1", basware_webhook_secret="bw-1", visma_webhook_secret="v-1"
        ),
        connection("1000002", "tenant-2"),
    ]

    async def load() -> list[Connection]:
        nonlocal loads
        loads += 1
        return connections

    retired = WebhookSecret(value=SecretStr("bw-old"), retired_at=NOW)
    configured = ConfiguredSecrets(basware={"1000001": [retired]}, visma={})
    source = ConnectionSecrets(load, configured, refresh=timedelta(minutes=1))

    basware = await source.basware("1000001")
    assert basware is not None
    assert basware.tenant == "1000001"
    assert [s.value.get_secret_value() for s in basware.secrets] == ["bw-1", "bw-old"]
    visma = await source.visma("tenant-1")
    assert visma is not None
    assert (visma.tenant, [s.value.get_secret_value() for s in visma.secrets]) == (
        "1000001",
        ["v-1"],
    )
    # A connection without a webhook secret, and a tenant nobody knows, verify nothing.
    assert await source.visma("tenant-2") is None
    assert await source.basware("1000002") is None
    assert await source.basware("unknown") is None
    assert await source.basware("unknown-too") is None
    # Re-read after `refresh`, and once for the first tenant not found; the next one within
    # `miss_refresh` (a second) costs no read.
    assert loads == 2


@pytest.mark.parametrize("stamp", ["²", "١٢٣", "1" * 40, "-5", " 17"])
def test_a_signed_timestamp_that_is_not_plain_digits_is_bad_not_an_error(stamp: str) -> None:
    """'²' passes str.isdigit() and then broke int(): the request got a 500."""
    signed = {"x-bwapi-signature-256": sign(KEY, BODY, TIMED, stamp), "x-timestamp": stamp}
    assert refusal(signed, TIMED) is Reason.BAD_TIMESTAMP


def test_verification_names_the_digest_of_what_was_signed() -> None:
    stamp = str(int(NOW.timestamp()))
    signed = timed_headers(NOW)
    digest = verify_signature(signed, BODY, [KEY], TIMED, NOW)
    assert digest == hashlib.sha256(f"{stamp}.".encode() + BODY).hexdigest()
    plain = {"x-bwapi-signature-256": sign(KEY, BODY, HEX)}
    assert verify_signature(plain, BODY, [KEY], HEX, NOW) == hashlib.sha256(BODY).hexdigest()


async def test_star_secrets_serve_only_the_tenants_of_connections() -> None:
    shared = [WebhookSecret(value=SecretStr("shared"))]
    source = ConnectionSecrets(
        StaticConnectionSource([connection("1000001", "tenant-1")]).list,
        ConfiguredSecrets(basware={"*": shared}, visma={"*": shared}),
        refresh=timedelta(minutes=1),
    )
    assert await source.basware("1000001") == TenantSecrets(tenant="1000001", secrets=(*shared,))
    visma = await source.visma("tenant-1")
    assert visma == TenantSecrets(tenant="1000001", secrets=(*shared,))
    assert await source.basware("evil-tenant") is None
    assert await source.visma("tenant-2") is None


async def test_a_new_connection_is_found_at_once_and_a_failed_read_keeps_the_last() -> None:
    known = [connection("1000001", "tenant-1", basware_webhook_secret="bw-1")]
    fail = False

    async def load() -> list[Connection]:
        if fail:
            raise VaultError("secret x is sealed under master key k-new, which is not loaded")
        return list(known)

    source = ConnectionSecrets(
        load, ConfiguredSecrets({}, {}), refresh=timedelta(hours=1), miss_refresh=timedelta(0)
    )
    assert await source.basware("1000002") is None
    known.append(connection("1000002", "tenant-2", basware_webhook_secret="bw-2"))
    added = await source.basware("1000002")
    assert added is not None
    assert [s.value.get_secret_value() for s in added.secrets] == ["bw-2"]
    fail = True
    assert await source.basware("1000003") is None  # a re-read that fails...
    still = await source.basware("1000001")  # ...keeps what was read before
    assert still is not None
    assert [s.value.get_secret_value() for s in still.secrets] == ["bw-1"]

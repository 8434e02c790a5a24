"""x-vwd-signature-v1 as the gateway checks it: base64 HMAC-SHA256 of the raw body, any of
the rotation secrets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlconnector.visma import SIGNATURE_HEADER, VismaWebhookBody
from webhook_gateway.answers import Reason, Refused
from webhook_gateway.settings import VISMA_SCHEME
from webhook_gateway.verify import sign, verify_signature

BODY = b'{"entity":"Supplier","event":"Updated","id":"50012"}'
SECRET = b"demo-visma-webhook-secret"
# printf '<BODY>' | openssl dgst -sha256 -hmac demo-visma-webhook-secret -binary | base64
EXPECTED = "xXx8c0TtTs71pmZ4LgstlodlbD5atE3dHR6opb0Q6Ck="
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def refusal(body: bytes, headers: dict[str, str], keys: list[bytes]) -> Reason:
    with pytest.raises(Refused) as caught:
        verify_signature(headers, body, keys, VISMA_SCHEME, NOW)
    return caught.value.reason


def test_the_signature_matches_openssl() -> None:
    assert VISMA_SCHEME.header == SIGNATURE_HEADER
    assert sign(SECRET, BODY, VISMA_SCHEME) == EXPECTED


def test_either_secret_of_a_rotation_verifies() -> None:
    old = b"the-old-one"
    verify_signature({SIGNATURE_HEADER: EXPECTED}, BODY, [old, SECRET], VISMA_SCHEME, NOW)
    verify_signature({SIGNATURE_HEADER: f" {EXPECTED} "}, BODY, [SECRET], VISMA_SCHEME, NOW)
    assert refusal(BODY, {SIGNATURE_HEADER: EXPECTED}, [old]) is Reason.BAD_SIGNATURE


def test_a_changed_body_or_a_missing_signature_fails() -> None:
    changed = BODY.replace(b"50012", b"50013")
    assert refusal(changed, {SIGNATURE_HEADER: EXPECTED}, [SECRET]) is Reason.BAD_SIGNATURE
    assert refusal(BODY, {}, [SECRET]) is Reason.MISSING_SIGNATURE
    assert refusal(BODY, {SIGNATURE_HEADER: ""}, [SECRET]) is Reason.BAD_SIGNATURE
    assert refusal(BODY, {SIGNATURE_HEADER: EXPECTED}, []) is Reason.BAD_SIGNATURE


def test_the_body_model_reads_the_sandbox_body_and_ignores_the_rest() -> None:
    body = VismaWebhookBody.model_validate_json(
        b'{"entity":"AP Invoice","event":"Status Changed","id":"Invoice/000457",'
        b'"tenantId":"t-1","timestamp":"2026-11-25T10:00:00.123Z","statusCode":204}'
    )
    assert (body.entity, body.event, body.id, body.tenant_id, body.timestamp) == (
        "AP Invoice",
        "Status Changed",
        "Invoice/000457",
        "t-1",
        "2026-11-25T10:00:00.123Z",
    )
    thin = VismaWebhookBody.model_validate_json(b'{"entity":"Supplier","event":"Updated"}')
    assert (thin.id, thin.tenant_id) == (None, None)

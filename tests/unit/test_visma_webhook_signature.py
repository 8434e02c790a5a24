"""x-vwd-signature-v1: base64 HMAC-SHA256 of the raw body, any of the rotation secrets."""

from __future__ import annotations

from pydantic import SecretStr

from mlconnector.visma.webhooks import (
    VismaNotificationHeaders,
    verify_webhook_signature,
    webhook_signature,
)

BODY = b'{"entity":"Supplier","event":"Updated","id":"50012"}'
SECRET = SecretStr("demo-visma-webhook-secret")
# printf '<BODY>' | openssl dgst -sha256 -hmac demo-visma-webhook-secret -binary | base64
EXPECTED = "xXx8c0TtTs71pmZ4LgstlodlbD5atE3dHR6opb0Q6Ck="


def test_the_signature_matches_openssl() -> None:
    assert webhook_signature(BODY, SECRET) == EXPECTED


def test_either_secret_of_a_rotation_verifies() -> None:
    old = SecretStr("the-old-one")
    assert verify_webhook_signature(BODY, EXPECTED, [old, SECRET])
    assert verify_webhook_signature(BODY, f" {EXPECTED} ", [SECRET])
    assert not verify_webhook_signature(BODY, EXPECTED, [old])


def test_a_changed_body_or_a_missing_signature_fails() -> None:
    assert not verify_webhook_signature(BODY.replace(b"50012", b"50013"), EXPECTED, [SECRET])
    assert not verify_webhook_signature(BODY, None, [SECRET])
    assert not verify_webhook_signature(BODY, "", [SECRET])
    assert not verify_webhook_signature(BODY, EXPECTED, [])


def test_headers_are_read_case_insensitively() -> None:
    headers = VismaNotificationHeaders.from_headers(
        {
            "X-Vwd-Notification-Id": "n-1",
            "X-VWD-EVENT-ID": "Supplier.Updated",
            "x-vwd-tenant-id": "t-1",
            "x-vwd-notification-timestamp": "1764000000000",
        }
    )
    assert (headers.notification_id, headers.event_id, headers.tenant_id) == (
        "n-1",
        "Supplier.Updated",
        "t-1",
    )
    assert headers.notification_timestamp == 1_764_000_000_000

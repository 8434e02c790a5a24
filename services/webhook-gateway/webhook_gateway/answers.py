"""What the gateway answers to a webhook: an outcome (2xx) or a refusal with its reason."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Source(StrEnum):
    BASWARE = "basware"
    VISMA = "visma"


class WebhookOutcome(StrEnum):
    """How a webhook was taken (not what became of a record: that is contracts.Outcome)."""

    ACCEPTED = "accepted"  # verified and republished
    # Already republished: a sender's redelivery. Answered 2xx so the sender stops retrying
    # (docs/basware-p2p.md §8.3: answer 200 quickly, drop duplicates); never republished.
    DUPLICATE = "duplicate"
    CONNECTION_TEST = "connection_test"  # Basware's probe on subscription: verified, not published
    IGNORED = "ignored"  # verified, about an entity ml-connector does not sync


class Reason(StrEnum):
    BODY_TOO_LARGE = "body_too_large"
    BODY_TIMEOUT = "body_timeout"
    BAD_HEADER = "bad_header"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNKNOWN_TENANT = "unknown_tenant"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    MISSING_TIMESTAMP = "missing_timestamp"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    MALFORMED_JSON = "malformed_json"
    INVALID_PAYLOAD = "invalid_payload"
    MISSING_NOTIFICATION_ID = "missing_notification_id"
    MISSING_TENANT_ID = "missing_tenant_id"
    TENANT_MISMATCH = "tenant_mismatch"
    BROKER_UNAVAILABLE = "broker_unavailable"


HTTP_STATUS: dict[Reason, int] = {
    Reason.BODY_TOO_LARGE: 413,
    Reason.BODY_TIMEOUT: 408,
    Reason.BAD_HEADER: 400,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.UNKNOWN_TENANT: 404,
    Reason.MISSING_SIGNATURE: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.MISSING_TIMESTAMP: 401,
    Reason.BAD_TIMESTAMP: 401,
    Reason.STALE_TIMESTAMP: 401,
    Reason.MALFORMED_JSON: 400,
    Reason.INVALID_PAYLOAD: 422,
    Reason.MISSING_NOTIFICATION_ID: 400,
    Reason.MISSING_TENANT_ID: 400,
    Reason.TENANT_MISMATCH: 400,
    # Verified but not published: the sender may retry, and the scheduled poll is the net.
    Reason.BROKER_UNAVAILABLE: 503,
}


class Refused(Exception):
    """A webhook that is not republished. Carries only the reason: never a secret or the body."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason

    @property
    def status_code(self) -> int:
        return HTTP_STATUS[self.reason]

    @property
    def body_unread(self) -> bool:
        """The body was not read to its end: the connection cannot serve another request."""
        return self.reason in (Reason.BODY_TOO_LARGE, Reason.BODY_TIMEOUT)


class Answer(BaseModel):
    """The JSON body of a 2xx answer."""

    model_config = ConfigDict(frozen=True)

    outcome: WebhookOutcome
    event_id: str | None = None


class Refusal(BaseModel):
    """The JSON body of a 4xx/5xx answer: the reason code and nothing the sender sent."""

    model_config = ConfigDict(frozen=True)

    error: Reason

"""Pure signature checks: HMAC-SHA256 over the raw body, compared in constant time.

One configurable scheme serves both senders: Basware (recipe unverified, so header,
encoding, prefix and timestamp are settings) and Visma (base64 in x-vwd-signature-v1).
With a timestamp header, the signed bytes are `<timestamp>.<raw body>` (as the Basware
sandbox signs them) and the timestamp must lie within the tolerance of now.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from webhook_gateway.answers import Reason, Refused

# Epoch values above this are milliseconds (Visma's x-vwd-* timestamps are ms):
# 10^11 seconds is the year 5138, 10^11 milliseconds is 1973.
_MILLISECONDS_FROM = 10**11
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
_EPOCH = re.compile(r"[0-9]{1,16}")


class SignatureEncoding(StrEnum):
    HEX = "hex"
    BASE64 = "base64"


class SignatureScheme(BaseModel):
    model_config = ConfigDict(frozen=True)

    header: str
    encoding: SignatureEncoding
    prefix: str = ""  # e.g. "sha256=", stripped before decoding
    timestamp_header: str | None = None  # epoch seconds (or milliseconds)
    tolerance: timedelta = timedelta(minutes=5)


def signed_bytes(body: bytes, timestamp: str | None) -> bytes:
    return body if timestamp is None else timestamp.encode() + b"." + body


def sign(key: bytes, body: bytes, scheme: SignatureScheme, timestamp: str | None = None) -> str:
    """The header value a sender puts on `body` (used by tests and the benchmark)."""
    digest = hmac.new(key, signed_bytes(body, timestamp), hashlib.sha256).digest()
    encoded = digest.hex() if scheme.encoding is SignatureEncoding.HEX else _b64(digest)
    return scheme.prefix + encoded


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _decode(value: str, scheme: SignatureScheme) -> bytes | None:
    text = value.strip()
    if scheme.prefix:
        if not text.startswith(scheme.prefix):
            return None
        text = text[len(scheme.prefix) :]
    try:
        if scheme.encoding is SignatureEncoding.HEX:
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def _timestamp(value: str) -> datetime:
    if not _EPOCH.fullmatch(value):
        raise Refused(Reason.BAD_TIMESTAMP)
    number = int(value)
    seconds = number / 1000 if number >= _MILLISECONDS_FROM else float(number)
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise Refused(Reason.BAD_TIMESTAMP) from None


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    scheme: SignatureScheme,
    now: datetime,
) -> str:
    """The SHA-256 (hex) of the signed bytes, if one of `keys` signed `body` (and, with a
    timestamp, recently); else raises. The digest names what the sender vouched for, so a
    replay of it is recognised whatever unsigned headers come with it."""
    presented = headers.get(scheme.header)
    if presented is None:
        raise Refused(Reason.MISSING_SIGNATURE)
    timestamp: str | None = None
    if scheme.timestamp_header is not None:
        timestamp = headers.get(scheme.timestamp_header)
        if timestamp is None:
            raise Refused(Reason.MISSING_TIMESTAMP)
    digest = _decode(presented, scheme)
    if digest is None:
        raise Refused(Reason.BAD_SIGNATURE)
    payload = signed_bytes(body, timestamp)
    # Every key is tried, so the time taken says nothing about which one (if any) matched.
    matches = [
        hmac.compare_digest(digest, hmac.new(key, payload, hashlib.sha256).digest()) for key in keys
    ]
    if not any(matches):
        raise Refused(Reason.BAD_SIGNATURE)
    # The timestamp is signed, so it is judged only once the signature holds: a stale
    # rejection then means an authentic but old (replayed or long-delayed) request.
    if timestamp is not None and abs(now - _timestamp(timestamp)) > scheme.tolerance:
        raise Refused(Reason.STALE_TIMESTAMP)
    return hashlib.sha256(payload).hexdigest()

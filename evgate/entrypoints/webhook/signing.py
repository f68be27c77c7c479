"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

When a subscription's configuration carries a `secret`, every POST has three headers:

    webhook-id:        stable per record (the same on every retry), so receivers can dedupe
    webhook-timestamp: seconds since the epoch of *this attempt*
    webhook-signature: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

The secret is `whsec_` + base64 of the key (Standard Webhooks' form) or the bare base64; the
key must be 24 to 64 bytes. A receiver verifies with `verify()` (or any Standard Webhooks
library); see docs/webhooks.md.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
DEFAULT_TOLERANCE_S = 300


class InvalidSecret(ValueError):
    """The secret is not `whsec_<base64>` / base64 of 24..64 bytes."""


class InvalidSignature(ValueError):
    """A received webhook's signature or timestamp does not verify."""


def decode_secret(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise InvalidSecret("secret must be a non-empty string")
    text = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("secret must be base64 (optionally prefixed with whsec_)") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecret(f"secret must decode to {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes, "
                            f"got {len(key)}")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(key: bytes, msg_id: str, body: bytes,
                      timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(key, msg_id, ts, body)}


def verify(secret: str, headers: dict[str, str], body: bytes, *,
           tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None) -> None:
    """Raise InvalidSignature unless `headers` sign `body` with `secret` (receiver side).

    `headers` is looked up case-insensitively; several space-separated signatures are
    accepted (key rotation) and compared in constant time.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        raise InvalidSignature("missing or malformed webhook-* headers") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise InvalidSignature("timestamp outside the tolerance")
    expected = sign(decode_secret(secret), msg_id, timestamp, body)
    for candidate in signatures:
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no matching signature")

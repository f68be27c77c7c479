"""Standard Webhooks signatures: the spec's published vector, round trips, refusals."""
import base64

import pytest

from evgate.entrypoints.webhook.signing import (InvalidSecret, InvalidSignature, decode_secret, sign,
                                     signature_headers, verify)

# The example of the Standard Webhooks specification / its reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_vector():
    assert sign(decode_secret(SPEC_SECRET), SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_bare_base64_secret_is_the_same_key():
    assert decode_secret(SPEC_SECRET[len("whsec_"):]) == decode_secret(SPEC_SECRET)


def test_verify_accepts_the_spec_vector_and_rotation_lists():
    headers = {"Webhook-Id": SPEC_ID, "Webhook-Timestamp": str(SPEC_TS),
               "Webhook-Signature": "v1,bm90LXRoaXMtb25l " + SPEC_SIGNATURE}
    verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS + 10)


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "secret", "stale"])
def test_verify_refuses_tampering(change):
    key = decode_secret(SPEC_SECRET)
    headers = signature_headers(key, SPEC_ID, SPEC_BODY, timestamp=SPEC_TS)
    body, secret, now = SPEC_BODY, SPEC_SECRET, SPEC_TS
    if change == "body":
        body = SPEC_BODY + b" "
    elif change == "id":
        headers["webhook-id"] = "msg_other"
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(SPEC_TS + 1)
    elif change == "secret":
        secret = "whsec_" + base64.b64encode(b"x" * 32).decode()
    elif change == "stale":
        now = SPEC_TS + 301
    with pytest.raises(InvalidSignature):
        verify(secret, headers, body, now=now)


@pytest.mark.parametrize("secret", ["", "whsec_", "not base64!", "whsec_" + base64.b64encode(
    b"short").decode(), base64.b64encode(b"x" * 65).decode(), None])
def test_bad_secrets(secret):
    with pytest.raises(InvalidSecret):
        decode_secret(secret)

"""The webhook HTTP client's auth (basic, token, oauth2 client credentials with caching) and
the subscription configuration checks the subscription service uses."""
import base64
import json
from urllib.parse import parse_qs

import pytest

from evgate.config import Config
from evgate.errors import BadRequestError
from evgate.entrypoints.webhook.http import AuthError, WebhookAuth, pinned_session
from evgate.entrypoints.webhook.ssrf import SsrfPolicy, parse_networks
from evgate.entrypoints.webhook.target import (WebhookTarget, configuration_problems,
                                    validate_subscription_configuration)
from tests.support.receiver import Receiver

TESTS = SsrfPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
TIMEOUT = (2.0, 5.0)


def test_basic_and_token_headers():
    basic = WebhookAuth({"type": "basic", "basic": {"username": "u", "password": "p:w"}})
    assert basic.header(None, TIMEOUT) == "Basic " + base64.b64encode(b"u:p:w").decode()
    token = WebhookAuth({"type": "token", "token": {"value": "abc"}})
    assert token.header(None, TIMEOUT) == "Bearer abc"
    assert "abc" not in repr(token) and "p:w" not in repr(basic)


def test_oauth2_client_credentials_cached_and_invalidated():
    with Receiver() as idp:
        issued = []

        def token_endpoint(handler, body):
            form = parse_qs(body.decode())
            assert form["grant_type"] == ["client_credentials"]
            assert form["scope"] == ["a b"]
            assert handler.headers["Authorization"] == "Basic " + base64.b64encode(
                b"client:s3cret").decode()
            issued.append(f"tok{len(issued)}")
            return 200, json.dumps({"access_token": issued[-1], "expires_in": 3600}).encode()
        idp.default = token_endpoint
        auth = WebhookAuth({"type": "oauth2", "oauth2": {
            "endpoint": idp.url, "clientId": "client", "clientSecret": "s3cret",
            "scopes": ["a", "b"]}})
        session = pinned_session(TESTS)
        assert auth.header(session, TIMEOUT) == "Bearer tok0"
        assert auth.header(session, TIMEOUT) == "Bearer tok0"   # cached
        auth.invalidate()
        assert auth.header(session, TIMEOUT) == "Bearer tok1"
        assert len(idp.requests) == 2


@pytest.mark.parametrize("status,retriable", [(500, True), (503, True), (400, False),
                                              (401, False)])
def test_oauth2_token_endpoint_errors(status, retriable):
    with Receiver() as idp:
        idp.default = status
        auth = WebhookAuth({"type": "oauth2", "oauth2": {
            "endpoint": idp.url, "clientId": "c", "clientSecret": "s"}})
        with pytest.raises(AuthError) as caught:
            auth.header(pinned_session(TESTS), TIMEOUT)
        assert caught.value.retriable is retriable


GOOD = {"entrypointId": "webhook", "callbackUrl": "https://93.184.216.34/hook",
        "headers": [{"name": "X-A", "value": "1"}],
        "auth": {"type": "token", "token": {"value": "t"}},
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


@pytest.mark.parametrize("change,fragment", [
    ({"callbackUrl": "ftp://x/"}, "http or https"),
    ({"headers": {"X-A": "1"}}, "list"),
    ({"headers": [{"name": "Bad Name", "value": "1"}]}, "headers[0].name"),
    ({"headers": [{"name": "Content-Length", "value": "1"}]}, "headers[0].name"),
    ({"headers": [{"name": "X-A", "value": "a\r\nX-Injected: 1"}]}, "headers[0].value"),
    ({"auth": {"type": "basic", "basic": {"username": "u"}}}, "username and password"),
    ({"auth": {"type": "oauth2", "oauth2": {"endpoint": "https://idp/"}}}, "clientId"),
    ({"auth": {"type": "kerberos"}}, "unknown auth type"),
    ({"secret": "short"}, "secret"),
])
def test_configuration_problems(change, fragment):
    problems = configuration_problems({**GOOD, **change})
    assert any(fragment in p for p in problems), problems
    with pytest.raises(BadRequestError):
        validate_subscription_configuration({**GOOD, **change}, SsrfPolicy())


def test_good_configuration_builds_a_target():
    validate_subscription_configuration(GOOD, SsrfPolicy())
    config = Config.from_env({})
    target = WebhookTarget.build(GOOD, {"http": {"connectTimeout": 1500, "readTimeout": 2500,
                                                 "maxConcurrentConnections": 2}}, config)
    assert target.timeout == (1.5, 2.5) and target.max_connections == 2
    assert target.headers == {"X-A": "1"} and target.signing_key is not None
    assert "whsec" not in repr(target) and "X-A" not in repr(target)  # nothing secret
    defaults = WebhookTarget.build(GOOD, {}, config)
    assert defaults.timeout == (3.0, 10.0)


def test_private_callback_refused_at_subscription():
    with pytest.raises(BadRequestError) as caught:
        validate_subscription_configuration({**GOOD, "callbackUrl": "http://10.0.0.8/"},
                                            SsrfPolicy())
    assert caught.value.status == 400

"""Fuzz: no input to any management or portal route yields a 5xx or a traceback.

Every rule of the Flask url_map, every method, gets generated path parameters (real ids of
seeded entities, or anything), query strings and bodies: nesting thousands deep, wrong types
at the fields the services read, lone surrogates, huge strings, random keys, broken UTF-8,
mutated valid definitions. Bounded (max_examples per route) so the file runs in seconds."""
from __future__ import annotations

import copy
import json
import logging
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from .management_fixtures import (ADMIN, Api, B, api_definition, fast_hashing,  # noqa: F401
                                  management, push_api_definition)

_FIELDS = ["name", "description", "id", "endpoints", "endpointGroups", "listeners", "plans",
           "entrypoints", "type", "configuration", "metadata", "application", "plan",
           "roles", "password", "accepted", "customApiKey", "status", "settings", "security",
           "flows", "order", "validation", "deploymentLabel", "entrypointId", "callbackUrl",
           "sharedConfiguration", "sasl", "ssl", "paths", "path", "app", "client_id"]
_WEIRD_TEXT = st.sampled_from(["\ud800", "\udfff", "a\ud800b", "\x00", "\n", "****",
                               "\U0001F600", "", " ", "x" * 300, "x" * 20000, "../..", "%00"])
_text = st.text(max_size=20) | _WEIRD_TEXT
_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2 ** 63)
            | st.floats(allow_nan=False, allow_infinity=False) | _text)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(_FIELDS) | _text, children, max_size=5),
    max_leaves=25)


@st.composite
def _mutated_definition(draw):
    """A valid API definition with one place replaced by something else (wrong type, deep)."""
    definition = draw(st.sampled_from([api_definition(), push_api_definition()]))
    definition = copy.deepcopy(definition)
    definition["plans"] = [{"name": "p", "security": {"type": "key-less"}}]
    node = definition
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            if isinstance(node[key], (dict, list)) and node[key]:
                node = node[key]
                continue
            node[key] = draw(_values)
            break
        if isinstance(node, list) and node:
            index = draw(st.integers(min_value=0, max_value=len(node) - 1))
            if isinstance(node[index], (dict, list)) and node[index]:
                node = node[index]
                continue
            node[index] = draw(_values)
            break
    if isinstance(node, dict):
        node[draw(st.sampled_from(_FIELDS))] = draw(_values)
    return json.dumps(definition).encode()


def _deep(draw_depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{\"a\":": "}"}[opener]
    return (opener * draw_depth + "1" + closer * draw_depth).encode()


_bodies = st.one_of(
    st.none(),
    st.builds(lambda v: json.dumps(v).encode(), _values),
    _mutated_definition(),
    st.builds(_deep, st.integers(min_value=1, max_value=20000), st.sampled_from(["[", '{"a":'])),
    st.builds(lambda n: b"[" * n, st.integers(min_value=1, max_value=100000)),
    st.builds(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"),
              _values),
    st.binary(max_size=64),
    st.sampled_from([b"NaN", b'{"name": Infinity}', b'{"name": "\xed\xa0\x80"}', b"\xff",
                     b'{"name": 1e999}', b'{"name": ' + b"1" * 5000 + b"}",
                     b'{"name": "a", "name": ["b"]}', b"[]", b"{}", b"null", b'"x"']),
)
_content_types = st.sampled_from(["application/json", "application/json", "text/plain",
                                  "application/merge-patch+json", None])


def _routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.rule, method))
    return routes


@pytest.fixture
def seeded(management):
    """The app with one of each entity, so generated requests also reach existing ones."""
    api = Api(management.test_client())
    created = api.create_api(api_definition(path="/fuzz"))
    push = api.create_api(push_api_definition("fuzz-push"))
    plan = api.create_plan(created["id"], "api-key")
    push_plan = api.create_plan(push["id"], "subscription")
    app = api.create_app("fuzz")
    sub = api.call("POST", f"{B}/v4/apis/{created['id']}/subscriptions"
                           f"?application={app['id']}&plan={plan['id']}", 201)
    ids = {"api_id": [created["id"], push["id"]], "plan_id": [plan["id"], push_plan["id"]],
           "app_id": [app["id"]], "sub_id": [sub["id"]], "username": ["admin", "fuzzer"]}
    return management, ids


def _management_app_routes() -> list[tuple[str, str]]:
    """The routes, at collection time: the app is built on a throwaway in-memory repository
    (it needs one only to make sure `admin` exists) with cheap password hashing."""
    import evgate.security.passwords as passwords
    from evgate.config import Config
    from evgate.management.app import create_management_app
    from evgate.repository import Repository
    from evgate.repository.tables import metadata
    repo = Repository("sqlite://")
    metadata.create_all(repo.engine)
    cost = passwords.N, passwords.P
    passwords.N, passwords.P = 2 ** 10, 1
    try:
        app = create_management_app(Config.from_env({}, admin_password="collect-routes"),
                                    repository=repo)
    finally:
        passwords.N, passwords.P = cost
        repo.dispose()
    return _routes(app)


ROUTES = _management_app_routes()


def test_every_route_is_fuzzed():
    """The parametrisation below comes from the url_map: nothing is left out by hand."""
    assert len(ROUTES) >= 35
    assert ("/management/organizations/DEFAULT/environments/DEFAULT/v4/apis", "POST") in ROUTES


@pytest.mark.parametrize("rule, method", ROUTES, ids=[f"{m} {r}" for r, m in ROUTES])
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_no_input_yields_a_5xx_or_a_traceback(seeded, caplog, rule, method, data):
    app, ids = seeded
    path = rule
    for name in ("api_id", "plan_id", "app_id", "sub_id", "username"):
        if f"<{name}>" in path:
            value = data.draw(st.sampled_from(ids[name]) | _text.filter(
                lambda t: not any("\ud800" <= c <= "\udfff" for c in t)), label=name)
            path = path.replace(f"<{name}>", quote(value, safe="") or "x")
    query = data.draw(st.dictionaries(
        st.sampled_from(["action", "status", "application", "plan", "api"]) | st.text(max_size=5),
        st.sampled_from(["START", "STOP", "PAUSED", "RESUMED", "CLOSED", "STARTED",
                         "published,closed", "ACCEPTED,BOGUS"] + ids["app_id"] + ids["plan_id"])
        | st.text(max_size=10), max_size=3), label="query")
    body = data.draw(_bodies, label="body")
    content_type = data.draw(_content_types, label="content type")
    headers = dict(ADMIN)
    if content_type:
        headers["Content-Type"] = content_type
    url = path + ("?" + urlencode(query, errors="surrogatepass") if query else "")
    with caplog.at_level(logging.ERROR, logger="evgate"):
        response = app.test_client().open(url, method=method, data=body, headers=headers)
    text = response.get_data(as_text=True)
    assert response.status_code < 500, (method, url, body[:200] if body else body, text[:500])
    assert "Traceback" not in text
    if response.status_code != 204 and not rule.startswith("/console"):
        json.loads(text)  # every API answer, errors included, is JSON (the console is HTML)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[:2000]

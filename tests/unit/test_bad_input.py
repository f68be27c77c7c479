"""Bad input to the management API is a precise 4xx with a JSON body, never a 500: nesting
depth, body size (Content-Length and chunked), text that is not UTF-8 or holds lone
surrogates, NaN, wrong types before masking runs, over-long names, duplicates (409)."""
from __future__ import annotations

import io
import json
from array import array
from itertools import accumulate

import pytest
from hypothesis import given, settings, strategies as st

from evgate import jsoninput
from evgate.config import Config
from evgate.errors import BadRequestError, DuplicateError

from .management_fixtures import (ADMIN, B, P, api, api_definition, client,  # noqa: F401
                                  fast_hashing, management)

JSON = {**ADMIN, "Content-Type": "application/json"}


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(True))
    body = response.get_json()
    assert body["http_status"] == status
    if code:
        assert body["technicalCode"] == code, body
    return body


# -- nesting depth -----------------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [
    ("POST", "/v4/apis"), ("PUT", "/v4/apis/x"), ("POST", "/applications"),
    ("POST", "/v4/apis/x/plans"), ("PUT", "/users/bob")])
def test_json_nested_10000_deep_is_400_naming_the_byte(client, method, path):
    body = "[" * 10000 + "]" * 10000
    response = client.open(B + path, method=method, data=body, headers=JSON)
    error = _error(response, 400, "body.tooDeep")
    assert "deeper than 64 levels at byte 64" in error["message"]


def test_deep_description_is_400_before_any_processing(client):
    definition = json.dumps(api_definition(description="HOLE")).replace(
        '"HOLE"', "[" * 900 + "]" * 900)
    _error(client.post(B + "/v4/apis", data=definition, headers=JSON), 400, "body.tooDeep")


def test_depth_limit_is_a_setting(repo, database_url, fast_hashing):
    from evgate.management.app import create_management_app
    config = Config.from_env({"EVGATE_MANAGEMENT_MAX_JSON_DEPTH": "3"},
                             database_url=database_url, admin_password="admin-secret")
    client = create_management_app(config, repository=repo).test_client()
    ok = client.post(B + "/applications", headers=JSON,
                     data=json.dumps({"name": "a", "settings": {"app": {"type": "x"}}}))
    assert ok.status_code == 201
    deep = client.post(B + "/applications", headers=JSON,
                       data=json.dumps({"name": "a", "settings": {"app": {"t": []}}}))
    _error(deep, 400, "body.tooDeep")


def _reference_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_reference_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_reference_depth, value.values()), default=0)
    return 0


_tricky_text = st.text(alphabet='[]{}"\\ax\n', max_size=6)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(_tricky_text, children, max_size=3),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(_json_values, st.booleans(), st.integers(min_value=0, max_value=20))
def test_depth_scan_agrees_with_a_recursive_reference(value, ascii_only, limit):
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = _reference_depth(value)
    assert jsoninput.max_depth(data) == depth
    if depth > limit:
        with pytest.raises(BadRequestError):
            jsoninput.check_depth(data, limit)
    else:
        jsoninput.check_depth(data, limit)


@pytest.mark.parametrize("data", [b"[" * 100000, b"[" * 100000 + b"]", b'{"a":' * 50000,
                                  b"]" + b"[" * 100000, b"[" * 70 + b'"\\\\"' + b"]" * 70])
def test_unbalanced_or_deep_bodies_never_reach_the_parser(data):
    with pytest.raises(BadRequestError):
        jsoninput.loads(data, max_depth_limit=64)


def test_brackets_inside_strings_do_not_count():
    data = json.dumps({"a": "[" * 1000, "b": '\\"[[[' * 100, "c": [[1]]}).encode()
    assert jsoninput.max_depth(data) == 3
    assert max(accumulate(array("b", jsoninput._brackets(data)))) == 3


# -- body size ---------------------------------------------------------------------------------
def test_body_over_the_limit_is_413_by_content_length(client):
    big = json.dumps({"name": "x" * (1 << 20)})
    _error(client.post(B + "/applications", data=big, headers=JSON), 413, "body.tooLarge")


def test_body_over_the_limit_is_413_on_routes_that_ignore_their_body(client, api):
    created = api.create_api()
    big = b" " * ((1 << 20) + 1)
    response = client.post(f"{B}/v4/apis/{created['id']}?action=START", data=big, headers=JSON)
    _error(response, 413, "body.tooLarge")


def test_chunked_body_over_the_limit_is_413_while_reading(client):
    """A chunked body has no Content-Length: the read itself stops at the limit."""
    big = json.dumps({"name": "x" * (2 << 20)}).encode()
    response = client.post(B + "/applications", input_stream=io.BytesIO(big), headers=JSON,
                            environ_overrides={"wsgi.input_terminated": True})
    _error(response, 413, "body.tooLarge")
    small = json.dumps({"name": "chunked"}).encode()
    ok = client.post(B + "/applications", input_stream=io.BytesIO(small), headers=JSON,
                     environ_overrides={"wsgi.input_terminated": True})
    assert ok.status_code == 201 and ok.get_json()["name"] == "chunked"


def test_body_limit_is_a_setting(repo, database_url, fast_hashing):
    from evgate.management.app import create_management_app
    config = Config.from_env({"EVGATE_MANAGEMENT_MAX_BODY_BYTES": "100"},
                             database_url=database_url, admin_password="admin-secret")
    client = create_management_app(config, repository=repo).test_client()
    _error(client.post(B + "/applications", data=json.dumps({"name": "x" * 100}),
                       headers=JSON), 413)
    assert client.post(B + "/applications", data=json.dumps({"name": "x"}),
                       headers=JSON).status_code == 201


# -- text and constants -----------------------------------------------------------------------
@pytest.mark.parametrize("path, body, where", [
    ("/v4/apis", '{"name": "\\ud800"}', "$.name"),
    ("/applications", '{"name": "a", "settings": {"app": {"type": "\\udfff x"}}}',
     "$.settings.app.type"),
    ("/applications", '{"name": "a", "tags": ["ok", "\\ud800"]}', "$.tags[1]"),
    ("/applications", '{"name": "a", "\\ud800": 1}', "$ (a key)"),
])
def test_lone_surrogates_are_400_naming_the_path(client, path, body, where):
    error = _error(client.post(B + path, data=body, headers=JSON), 400, "body.malformed")
    assert error["message"].startswith(f"{where}: a lone UTF-16 surrogate")


def test_surrogate_pairs_are_text(client):
    created = client.post(B + "/applications", data='{"name": "\\ud83d\\ude00"}',
                          headers=JSON)
    assert created.status_code == 201 and created.get_json()["name"] == "\U0001F600"


def test_utf8_encoded_surrogates_and_invalid_utf8_are_400(client):
    for raw in (b'{"name": "\xed\xa0\x80"}', b'{"name": "\xff"}'):
        error = _error(client.post(B + "/applications", data=raw, headers=JSON), 400,
                       "body.malformed")
        assert "not valid UTF-8 at byte 10" in error["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_nan_and_infinity_are_400(client, constant):
    body = '{"name": "a", "x": %s}' % constant
    _error(client.post(B + "/applications", data=body, headers=JSON), 400, "body.malformed")


def test_control_characters_in_path_or_query_are_400(client):
    _error(client.get(B + "/v4/apis/a%00b", headers=ADMIN), 400, "request.invalid")
    _error(client.get(B + "/v4/apis/x/subscriptions?status=A%00", headers=ADMIN), 400,
           "request.invalid")


# -- types before masking ----------------------------------------------------------------------
@pytest.mark.parametrize("value", [True, 1, None, "x", {"a": 1}])
def test_endpoints_of_the_wrong_type_are_400_with_the_path(api, client, value):
    definition = api_definition()
    definition["endpointGroups"][0]["endpoints"] = value
    error = _error(client.post(B + "/v4/apis", json=definition, headers=ADMIN), 400,
                   "api.definition.invalid")
    assert {"path": "$.endpointGroups[0].endpoints",
            "message": "Input should be a valid list"} in error["errors"]
    created = api.create_api(api_definition(path="/typed"))
    update = _error(client.put(f"{B}/v4/apis/{created['id']}", json=definition,
                               headers=ADMIN), 400, "api.definition.invalid")
    assert any(p["path"] == "$.endpointGroups[0].endpoints" for p in update["errors"])


@pytest.mark.parametrize("field, value", [
    ("endpointGroups", True), ("endpointGroups", [7]), ("listeners", {"a": 1})])
def test_other_wrong_shapes_before_masking_are_400(client, field, value):
    definition = api_definition(**{field: value})
    _error(client.post(B + "/v4/apis", json=definition, headers=ADMIN), 400,
           "api.definition.invalid")


@pytest.mark.parametrize("body, path", [
    ({"name": ["a"]}, "$.name"),
    ({"name": "a", "description": ["a"]}, "$.description"),
    ({"name": "a", "description": {"a": 1}}, "$.description"),
    ({"name": "x" * 256}, "$.name"),
    ({"name": "a", "description": "d" * 10001}, "$.description"),
])
def test_application_names_and_descriptions_are_typed_and_bounded(client, body, path):
    for prefix in (B, P):
        error = _error(client.post(prefix + "/applications", json=body, headers=ADMIN), 400)
        assert error["message"].startswith(path)


@pytest.mark.parametrize("extra, path", [
    ({"name": "x" * 256}, "$.name"), ({"id": "i" * 65}, "$.id"),
    ({"description": "d" * 10001}, "$.description"), ({"description": ["d"]}, "$.description")])
def test_api_names_ids_and_descriptions_are_bounded(client, extra, path):
    error = _error(client.post(B + "/v4/apis", json=api_definition(**extra), headers=ADMIN),
                   400, "api.definition.invalid")
    assert error["errors"][0]["path"] == path


@pytest.mark.parametrize("extra, path", [
    ({"name": "x" * 256}, "$.name"), ({"name": ["x"]}, "$.name"),
    ({"order": 2 ** 40}, "$.order"), ({"description": "d" * 10001}, "$.description")])
def test_plan_fields_are_typed_and_bounded(api, client, extra, path):
    created = api.create_api()
    body = {"name": "p", "security": {"type": "key-less"}, **extra}
    error = _error(client.post(f"{B}/v4/apis/{created['id']}/plans", json=body,
                               headers=ADMIN), 400, "api.definition.invalid")
    assert error["errors"][0]["path"] == path


@pytest.mark.parametrize("body", [{"plan": ["p"], "application": "a"},
                                  {"plan": "p", "application": {"id": "a"}},
                                  {"plan": 5, "application": "a"}])
def test_subscription_references_must_be_strings(client, body):
    _error(client.post(P + "/subscriptions", json=body, headers=ADMIN), 400, "body.invalid")
    _error(client.post(B + "/v4/apis/x/subscriptions", json=body, headers=ADMIN), 400,
           "body.invalid")


@pytest.mark.parametrize("body", [{"password": "secret-1", "roles": 5},
                                  {"password": "secret-1", "roles": [1]},
                                  {"password": "secret-1", "roles": {"ADMIN": 1}},
                                  {"password": ["x"]}])
def test_user_fields_are_typed(client, body):
    assert _error(client.put(B + "/users/bob", json=body, headers=ADMIN), 400)
    assert _error(client.put(B + "/users/" + "b" * 256, json={"password": "pw-123456"},
                             headers=ADMIN), 400)


# -- duplicates: 409 ---------------------------------------------------------------------------
def test_duplicate_plan_ids_in_one_definition_are_409(client):
    plans = [{"id": "p-1", "name": "a", "security": {"type": "key-less"}},
             {"id": "p-1", "name": "b", "security": {"type": "key-less"}}]
    error = _error(client.post(B + "/v4/apis", json=api_definition(plans=plans),
                               headers=ADMIN), 409, "plan.exists")
    assert error["message"] == "plan p-1 already exists"
    assert client.get(B + "/v4/apis", headers=ADMIN).get_json() == []  # nothing half-written


def test_plan_id_of_another_api_is_409(api, client):
    plan = {"id": "shared", "name": "a", "security": {"type": "key-less"}}
    api.create_api(api_definition(path="/one", plans=[plan]))
    _error(client.post(B + "/v4/apis", headers=ADMIN,
                       json=api_definition(path="/two", name="two", plans=[plan])),
           409, "plan.exists")


def test_duplicate_api_id_is_409(api, client):
    api.create_api(api_definition(id="fixed-id"))
    error = _error(client.post(B + "/v4/apis", headers=ADMIN,
                               json=api_definition(id="fixed-id", path="/other")),
                   409, "api.exists")
    assert "fixed-id" in error["message"]


def test_a_custom_api_key_in_use_is_409(api, client):
    created = api.create_api()
    plan = api.create_plan(created["id"], "api-key", validation="manual")
    subs = []
    for name in ("one", "two"):
        app = api.create_app(name)
        subs.append(api.call("POST", f"{B}/v4/apis/{created['id']}/subscriptions"
                             f"?application={app['id']}&plan={plan['id']}", 201))
    for index, sub in enumerate(subs):
        response = client.post(f"{B}/v4/apis/{created['id']}/subscriptions/{sub['id']}/_process",
                               json={"accepted": True, "customApiKey": "custom-key-1"},
                               headers=ADMIN)
        if index == 0:
            assert response.status_code == 200
        else:
            _error(response, 409, "apikey.exists")


def test_unique_violations_become_duplicate_errors_in_the_repository(repo):
    """Two writers racing past a service's existence check: the second insert is a
    DuplicateError (409), whichever store it goes through, and names no secret."""
    repo.apis.insert("race", {"name": "race"})
    with pytest.raises(DuplicateError) as caught:
        repo.apis.insert("race", {"name": "race"})
    assert (str(caught.value), caught.value.key, caught.value.status) == (
        "API race already exists", "api.exists", 409)
    repo.api_keys.insert("secret-key-value", subscription_id="s", application_id="a",
                         api_id="race")
    with pytest.raises(DuplicateError) as caught:
        repo.api_keys.insert("secret-key-value", subscription_id="s2", application_id="a",
                             api_id="race")
    assert "secret-key-value" not in str(caught.value)
    assert caught.value.key == "apikey.exists"
    with pytest.raises(DuplicateError):  # inside a service transaction: rolled back too
        with repo.write() as conn:
            repo.apis.insert("other", {"name": "other"}, conn=conn)
            repo.apis.insert("race", {"name": "race"}, conn=conn)
    assert repo.apis.find("other") is None
    assert repo.users.insert_if_absent("u", "hash", "USER") is True
    assert repo.users.insert_if_absent("u", "hash", "USER") is False


# -- the safety net ----------------------------------------------------------------------------
def test_an_unexpected_error_is_a_json_500_without_traceback_and_is_logged(management, caplog,
                                                                           monkeypatch):
    from evgate.services.apis import ApiService

    def broken(self):
        raise RuntimeError("internal detail /srv/secret/path")
    # each request binds its own services to the caller: break the class
    monkeypatch.setattr(ApiService, "list", broken)
    with caplog.at_level("ERROR", logger="evgate.management.errors"):
        response = management.test_client().get(B + "/v4/apis", headers=ADMIN)
    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal Server Error", "http_status": 500}
    assert "Traceback" not in response.get_data(True)
    [record] = [r for r in caplog.records if r.name == "evgate.management.errors"]
    assert record.exc_info and "internal detail" in str(record.exc_info[1])

"""Flow selectors, step conditions, containment and the definition checks of flows."""
from __future__ import annotations

import pytest

from evgate.definition import parse_definition
from evgate.errors import DefinitionError
from evgate.policies.chain import PathPattern
from evgate.policies.base import Policy

from .policy_helpers import context, definition, deploy, message, step, steps

MARK = step("assign-attributes", attributes=[{"name": "hit", "value": "yes"}])


def marked(api, ctx, phase="publish"):
    [out] = (api.publish_messages if phase == "publish" else api.subscribe_messages)(
        [message(b"x")], ctx)
    return out.attributes.get("hit") == "yes"


@pytest.mark.parametrize("path,operator,relative,params", [
    ("/", "STARTS_WITH", "/anything/below", {}),
    ("/", "EQUALS", "/", {}),
    ("/", "EQUALS", "/x", None),
    ("/orders", "STARTS_WITH", "/orders", {}),
    ("/orders", "STARTS_WITH", "/orders/1", {}),
    ("/orders", "STARTS_WITH", "/ordersx", None),
    ("/orders", "EQUALS", "/orders/", {}),
    ("/orders", "EQUALS", "/orders/1", None),
    ("/orders/:id", "EQUALS", "/orders/42", {"id": "42"}),
    ("/orders/:id", "STARTS_WITH", "/orders/42/lines", {"id": "42"}),
    ("/orders/:id", "EQUALS", "/orders", None),
    ("orders", None, "/orders/1", {}),
])
def test_path_pattern(path, operator, relative, params):
    assert PathPattern(path, operator).match(relative) == params


@pytest.mark.parametrize("selector,relative,method,expected", [
    ({"type": "http", "path": "/a", "pathOperator": "STARTS_WITH"}, "/a/b", "POST", True),
    ({"type": "http", "path": "/a", "pathOperator": "EQUALS"}, "/a/b", "POST", False),
    ({"type": "http", "path": "/", "methods": ["GET"]}, "/", "POST", False),
    ({"type": "http", "path": "/", "methods": ["post"]}, "/", "POST", True),
    ({"type": "channel", "channel": "/a"}, "/a", "POST", True),
    ({"type": "channel", "channel": "/a"}, "/b", "POST", False),
    ({"type": "channel", "operations": ["SUBSCRIBE"]}, "/", "POST", False),
    ({"type": "channel", "operations": ["PUBLISH"]}, "/", "POST", True),
    ({"type": "channel", "entrypoints": ["sse"]}, "/", "POST", False),
    ({"type": "channel", "entrypoints": ["http-post"]}, "/", "POST", True),
    ({"type": "condition", "condition": "{#request.headers['X-C'][0] == 'on'}"}, "/", "POST",
     True),
    ({"type": "condition", "condition": "{#request.headers['X-C'][0] == 'off'}"}, "/", "POST",
     False),
    # evaluation error (missing header, [0] on null) counts as false
    ({"type": "condition", "condition": "{#request.headers['X-None'][0] == 'on'}"}, "/",
     "POST", False),
])
def test_selectors_on_publish(selector, relative, method, expected):
    api = deploy([steps("publish", MARK, selectors=[selector])])
    ctx = context(api, relative=relative, method=method, headers={"X-C": "on"})
    assert marked(api, ctx) is expected


def test_channel_operations_split_the_message_phases():
    api = deploy([steps("subscribe", MARK, publish=[MARK],
                        selectors=[{"type": "channel", "operations": ["SUBSCRIBE"]}])])
    ctx = context(api)
    assert marked(api, ctx, "subscribe")
    assert not marked(api, context(api), "publish")


def test_http_selector_exposes_path_params():
    flow = steps("publish", step("assign-attributes", attributes=[
        {"name": "hit", "value": "{#request.pathParams['id'] == '42' ? 'yes' : 'no'}"}]),
        selectors=[{"type": "http", "path": "/orders/:id"}])
    api = deploy([flow])
    assert marked(api, context(api, relative="/orders/42"))


def test_without_request_the_path_is_the_subscription_channel():
    api = deploy([steps("subscribe", MARK, selectors=[{"type": "channel", "channel": "/eu"}])])
    eu = context(api, path=None, entrypoint="webhook",
                 subscription={"id": "s", "configuration": {"channel": "/eu/fr"}})
    assert marked(api, eu, "subscribe")
    other = context(api, path=None, entrypoint="webhook", subscription={"id": "s"})
    assert not marked(api, other, "subscribe")


def test_disabled_flow_and_step_are_skipped():
    api = deploy([steps("publish", MARK, enabled=False),
                  steps("publish", {**MARK, "enabled": False})])
    assert not marked(api, context(api))


@pytest.mark.parametrize("condition,expected", [
    ("{#request.method == 'POST'}", True),
    ("{#request.method == 'GET'}", False),
    ("{'true'}", True),                       # Spring converts the text "true"
    ("{#request.headers['X-None'][0] == 1}", False),   # error: false
    ("{42}", False),                          # not a boolean: false
])
def test_step_condition(condition, expected):
    api = deploy([steps("publish", {**MARK, "condition": condition})])
    assert marked(api, context(api)) is expected


def test_step_condition_is_evaluated_once_per_context():
    api = deploy([steps("publish", {**MARK, "condition": "{#context.attributes['n'] == 1}"})])
    ctx = context(api)
    ctx.attributes["n"] = 1
    assert marked(api, ctx)
    ctx.attributes["n"] = 2       # selection is memoised per context
    assert marked(api, ctx)
    assert not marked(api, context(api))


def test_message_condition_lets_other_messages_pass_unchanged():
    api = deploy([steps("subscribe", {
        **step("message-filtering", filter="{false}"),
        "messageCondition": "{#message.headers['drop']?.[0] == 'yes'}"})])
    ctx = context(api)
    kept = api.subscribe_messages([message(b"a", headers={"drop": ["yes"]}),
                                   message(b"b"), message(b"c", headers={"drop": ["no"]})], ctx)
    assert [m.content for m in kept] == [b"b", b"c"]


def test_plan_flows_run_after_api_flows():
    plan = {"id": "p1", "name": "p", "security": {"type": "key-less"}, "status": "published",
            "flows": [steps("publish", step("assign-attributes", attributes=[
                {"name": "order", "value": "{#message.attributes['order'] + ',plan'}"}]))]}
    api = deploy([steps("publish", step("assign-attributes", attributes=[
        {"name": "order", "value": "api"}]))], plans=[plan])
    ctx = context(api, plan=plan)
    [out] = api.publish_messages([message(b"x")], ctx)
    assert out.attributes["order"] == "api,plan"


class Exploding(Policy):
    type = "exploding"

    def on_message(self, message, ctx):
        if message.content == b"boom":
            raise RuntimeError("bug")
        return message


def test_a_failing_policy_drops_only_its_message(monkeypatch, caplog):
    from evgate import plugins
    monkeypatch.setitem(plugins.BUILTINS["policies"], "exploding",
                        f"{__name__}:Exploding")
    plugins._table.cache_clear()
    try:
        api = deploy([steps("subscribe", {"policy": "exploding"})])
    finally:
        monkeypatch.undo()
        plugins._table.cache_clear()
        plugins.load.cache_clear()
    kept = api.subscribe_messages([message(b"a"), message(b"boom"), message(b"c")],
                                  context(api))
    assert [m.content for m in kept] == [b"a", b"c"]
    assert api.flows.flows[0].phases["subscribe"][0].policy.errors == 1
    assert "api-1" in caplog.text and "dropped" in caplog.text


def test_response_phase_gets_request_phase_headers_and_runs_steps():
    from flask import Response
    api = deploy([steps("response", step("transform-headers", addHeaders=[
        {"name": "X-Status", "value": "{#response.status}"}]))])
    ctx = context(api)
    ctx.response_headers["X-From-Request"] = "1"
    response = api.run_response_phase(ctx, Response(b"", status=202))
    assert response.headers["X-From-Request"] == "1"
    assert response.headers["X-Status"] == "202"


# -- definition checks ------------------------------------------------------------------------

def problems(flows):
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(flows))
    return {p["path"]: p["message"] for p in info.value.problems}


@pytest.mark.parametrize("flow,path,fragment", [
    (steps("publish", {**MARK, "condition": "{#a ==}"}), "$.flows[0].publish[0].condition",
     "position 6"),
    (steps("subscribe", {**MARK, "messageCondition": "{#a.b)}"}),
     "$.flows[0].subscribe[0].messageCondition", "unexpected token ')' at position 5"),
    (steps("request", {**MARK, "messageCondition": "{true}"}),
     "$.flows[0].request[0].messageCondition", "publish and subscribe"),
    ({"selectors": [{"type": "condition", "condition": "{#x ==}"}]},
     "$.flows[0].selectors[0].condition", "position"),
    ({"selectors": [{"type": "condition"}]}, "$.flows[0].selectors[0].condition", "required"),
    ({"selectors": [{"type": "http", "pathOperator": "LIKE"}]},
     "$.flows[0].selectors[0].pathOperator", "STARTS_WITH"),
    ({"selectors": [{"type": "http", "methods": ["FETCH"]}]},
     "$.flows[0].selectors[0].methods[0]", "GET"),
    ({"selectors": [{"type": "channel", "operations": ["READ"]}]},
     "$.flows[0].selectors[0].operations[0]", "PUBLISH"),
    (steps("request", step("message-filtering", filter="{true}")),
     "$.flows[0].request[0].policy", "cannot run in the request phase"),
    (steps("subscribe", step("no-such-policy")), "$.flows[0].subscribe[0].policy",
     "unknown policy type"),
])
def test_flow_problems_name_the_path(flow, path, fragment):
    found = problems([flow])
    assert path in found, found
    assert fragment in found[path]


def test_a_stored_plan_with_a_broken_expression_fails_the_deploy_cleanly():
    plan = {"id": "old", "name": "p", "security": {"type": "key-less"}, "status": "published",
            "flows": [steps("publish", {**MARK, "condition": "{#a ==}"})]}
    with pytest.raises(DefinitionError) as info:
        deploy(plans=[plan])
    assert info.value.problems[0]["path"] == "plan old $.flows[0]"


# -- decided at deploy time (issue 11): an API without flows, key-less only ------------------------
KEYLESS = {"id": "kl", "name": "k", "security": {"type": "key-less"}, "status": "published"}
API_KEY = {"id": "ak", "name": "a", "security": {"type": "api-key"}, "status": "published"}


def test_plan_flows_run_when_the_api_itself_has_none():
    """The "no flow at all" shortcut must look at the plans' flows too."""
    plan = dict(KEYLESS, flows=[steps("publish", MARK)])
    api = deploy([], plans=[plan])
    ctx = context(api)
    api.admit(ctx)
    assert ctx.plan is plan
    assert marked(api, ctx)
    assert api.has_message_steps(ctx, "publish")


def test_an_api_without_flows_passes_messages_unchanged():
    api = deploy([], plans=[KEYLESS])
    ctx = context(api)
    api.admit(ctx)
    assert ctx.plan is KEYLESS
    sent = [message(b"a"), message(b"b")]
    assert api.publish_messages(sent, ctx) == sent
    assert not api.has_message_steps(ctx, "publish")


def test_a_wrong_api_key_is_refused_when_a_key_less_plan_exists_too():
    """Key-less admission is taken at once only when every request plan is key-less: with an
    api-key plan beside it, a request carrying a bad key is refused, never downgraded."""
    from evgate.errors import UnauthorizedError
    api = deploy([], plans=[KEYLESS, API_KEY])
    api.runtime.snapshot = None   # no key is known
    ctx = context(api, headers={"X-Gravitee-Api-Key": "not-a-key"})
    with pytest.raises(UnauthorizedError):
        api.admit(ctx)
    anonymous = context(api)
    api.admit(anonymous)
    assert anonymous.plan is KEYLESS


def test_a_closed_or_push_plan_does_not_make_an_api_key_less():
    push = {"id": "push", "name": "p", "security": {"type": "subscription"},
            "status": "published"}
    from evgate.errors import UnauthorizedError
    api = deploy([], plans=[push, dict(KEYLESS, status="closed")])
    with pytest.raises(UnauthorizedError):
        api.admit(context(api))

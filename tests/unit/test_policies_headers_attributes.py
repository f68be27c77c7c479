"""transform-headers and assign-attributes on messages, requests and responses."""
from __future__ import annotations

import pytest
from flask import Response

from evgate.policies.assign_attributes import AssignAttributesPolicy
from evgate.policies.transform_headers import TransformHeadersPolicy

from .policy_helpers import context, deploy, message, only_policy, step, steps


def on_message(policy, configuration, msg, phase="publish", **ctx_kwargs):
    api = deploy([steps(phase, step(policy, **configuration))])
    runner = api.publish_messages if phase == "publish" else api.subscribe_messages
    kept = runner([msg], context(api, **ctx_kwargs))
    return (kept[0] if kept else None), only_policy(api, phase)


@pytest.mark.parametrize("configuration,headers,expected", [
    ({"addHeaders": [{"name": "X-A", "value": "1"}]}, {}, {"X-A": ["1"]}),
    ({"addHeaders": [{"name": "x-a", "value": "new"}]}, {"X-A": ["old", "older"]},
     {"x-a": ["new"]}),
    ({"removeHeaders": ["x-secret"]}, {"X-Secret": ["s"], "keep": ["k"]}, {"keep": ["k"]}),
    ({"whitelistHeaders": ["a", "B"]}, {"a": ["1"], "b": ["2"], "c": ["3"]},
     {"a": ["1"], "b": ["2"]}),
    ({"whitelistHeaders": ["a"], "addHeaders": [{"name": "z", "value": "added"}]},
     {"a": ["1"], "c": ["3"]}, {"a": ["1"], "z": ["added"]}),
    ({"addHeaders": [{"name": "X-Len", "value": "{#message.content.length()}"},
                     {"name": "X-Topic", "value": "t-{#message.metadata['topic']}"}]},
     {}, {"X-Len": ["5"], "X-Topic": ["t-orders"]}),
    ({"addHeaders": [{"name": "X-Null", "value": "{null}"},
                     {"name": "X-Bad", "value": "{#message.headers['none'][0]}"},
                     {"name": "X-Ok", "value": "{true}"}]}, {}, {"X-Ok": ["true"]}),
])
def test_transform_message_headers(configuration, headers, expected):
    msg = message(b"hello", headers=dict(headers), metadata={"topic": "orders"})
    out, _ = on_message("transform-headers", configuration, msg, phase="subscribe")
    assert out.headers == expected


def test_transform_request_headers_are_seen_downstream():
    api = deploy([steps("request", step("transform-headers", removeHeaders=["X-Drop"],
                                        addHeaders=[{"name": "X-Kafka-Key",
                                                     "value": "{#request.headers['X-Id'][0]}"}]))])
    ctx = context(api, headers={"X-Id": "order-7", "X-Drop": "d"})
    api.run_request_phase(ctx)
    assert ctx.request.headers.get("X-Kafka-Key") == "order-7"
    assert "X-Drop" not in ctx.request.headers
    assert ctx.request_view.headers.get("x-kafka-key") == ["order-7"]


def test_transform_response_headers():
    api = deploy([steps("response", step("transform-headers", removeHeaders=["X-Internal"],
                                         addHeaders=[{"name": "X-Api", "value": "{#api.id}"}]))])
    response = Response(b"", status=202, headers={"X-Internal": "1"})
    out = api.run_response_phase(context(api), response)
    assert out.headers["X-Api"] == "api-1" and "X-Internal" not in out.headers


@pytest.mark.parametrize("attributes,expected", [
    ([{"name": "gravitee.attribute.kafka.recordKey",
       "value": "{#request.headers['X-Order'][0]}"}],
     {"gravitee.attribute.kafka.recordKey": "o-1"}),
    ([{"name": "gravitee.attribute.kafka.recordKey", "value": "{#jsonPath(#message.content, '$.n')}"}],
     {"gravitee.attribute.kafka.recordKey": "7"}),      # numbers become text for the key
    ([{"name": "n", "value": "{#jsonPath(#message.content, '$.n')}"}], {"n": 7}),
    ([{"name": "gravitee.attribute.kafka.topics", "value": "a,{#message.headers['t'][0]}"}],
     {"gravitee.attribute.kafka.topics": "a,b"}),
    ([{"name": "bad", "value": "{#message.headers['none'][0]}"}, {"name": "ok", "value": "x"}],
     {"ok": "x"}),
])
def test_assign_message_attributes(attributes, expected):
    msg = message({"n": 7}, headers={"t": ["b"]})
    out, _ = on_message("assign-attributes", {"attributes": attributes}, msg,
                        headers={"X-Order": "o-1"})
    assert out.attributes == expected


def test_assign_context_attributes_in_request_phase():
    api = deploy([steps("request", step("assign-attributes", attributes=[
        {"name": "gravitee.attribute.kafka.groupId", "value": "g-{#request.headers['X-G'][0]}"}
    ]))])
    ctx = context(api, headers={"X-G": "1"})
    api.run_request_phase(ctx)
    assert ctx.attributes["gravitee.attribute.kafka.groupId"] == "g-1"


@pytest.mark.parametrize("cls,configuration,path", [
    (TransformHeadersPolicy, {"addHeaders": [{"name": "a", "value": "{#x ==}"}]},
     ".addHeaders[0].value"),
    (TransformHeadersPolicy, {"addHeaders": [{"value": "x"}]}, ".addHeaders[0].name"),
    (TransformHeadersPolicy, {"addHeaders": {"a": "b"}}, ".addHeaders"),
    (TransformHeadersPolicy, {"removeHeaders": "x"}, ".removeHeaders"),
    (AssignAttributesPolicy, {"attributes": [{"name": "a", "value": "{)}"}]},
     ".attributes[0].value"),
    (AssignAttributesPolicy, {"attributes": ["a"]}, ".attributes[0]"),
])
def test_validation(cls, configuration, path):
    assert path in dict(cls.validate_configuration(configuration, None))

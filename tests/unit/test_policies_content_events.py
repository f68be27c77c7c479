"""assign-content and cloud-events."""
from __future__ import annotations

import base64
import json

import pytest

from evgate.el import ExpressionError
from evgate.policies.assign_content import AssignContentPolicy, split_body
from evgate.policies.cloud_events import CloudEventsPolicy

from .policy_helpers import context, deploy, message, only_policy, step, steps


def run(policy, configuration, msg):
    api = deploy([steps("subscribe", step(policy, **configuration))])
    kept = api.subscribe_messages([msg], context(api))
    return (kept[0] if kept else None), only_policy(api, "subscribe")


@pytest.mark.parametrize("body,content,expected", [
    ('{"feature": "{#jsonPath(#message.content, \'$.feature\')}"}', {"feature": "demo", "x": 1},
     b'{"feature": "demo"}'),
    ("{#message.content}", b"\xff\x00raw", b"\xff\x00raw"),
    ('{"raw": {#message.content}, "n": {#jsonPath(#message.content, \'$.n\') + 1}}',
     {"n": 1}, b'{"raw": {"n": 1}, "n": 2}'),
    ("{#jsonPath(#message.content, '$.payload')}", {"payload": {"a": [1, True, None]}},
     b'{"a":[1,true,null]}'),
    ("constant", b"x", b"constant"),
    ("id={ #message.metadata['id'] } {#message.metadata['none']}|", b"", b"id=7 |"),
    ("{#message.metadata['id'] + '}'}", b"", b"7}"),
    ("{'x' + #message.metadata['id']}", b"", b"{'x' + #message.metadata['id']}"),  # text
])
def test_assign_content(body, content, expected):
    out, _ = run("assign-content", {"body": body}, message(content, metadata={"id": 7}))
    assert out.content == expected


def test_assign_content_failure_drops_the_message():
    out, policy = run("assign-content", {"body": "{#jsonPath(#message.content, '$.a')}"},
                      message(b"not json"))
    assert out is None and policy.errors == 1


@pytest.mark.parametrize("configuration,fragment", [
    ({"body": '{"a": {#message.content == )}}'}, "position 27"),
    ({"body": '{"a": {#message.content'}, "not closed"),
    ({"body": "${message.content}"}, "FreeMarker"),
    ({}, "required"),
])
def test_assign_content_validation(configuration, fragment):
    found = dict(AssignContentPolicy.validate_configuration(configuration, None))
    assert fragment in found[".body"]


def test_split_body_skips_braces_in_strings():
    assert split_body("a {#x == '}'} b") == ["a ", (2, "{#x == '}'}"), " b"]
    with pytest.raises(ExpressionError):
        split_body("{#x == '}")


COLLECTION = {"type": "demo-events", "id": "{#message.metadata['key']}",
              "source": "kafka://{#message.metadata['topic']}/{#message.metadata['partition']}/"
                        "{#message.metadata['offset']}"}
METADATA = {"key": "k1", "topic": "orders", "partition": 2, "offset": 40}


@pytest.mark.parametrize("content,headers,data", [
    ({"a": 1}, {}, {"data": {"a": 1}}),
    (b"plain text", {}, {"data": "plain text"}),
    (b"\xff\xfe", {}, {"data_base64": base64.b64encode(b"\xff\xfe").decode()}),
    (b"<a/>", {"Content-Type": ["application/xml"]},
     {"data": "<a/>", "datacontenttype": "application/xml"}),
    (b"{bad", {"content-type": ["application/json"]},
     {"data_base64": base64.b64encode(b"{bad").decode(), "datacontenttype": "application/json"}),
])
def test_cloud_events_structured(content, headers, data):
    out, _ = run("cloud-events", COLLECTION, message(content, headers=dict(headers),
                                                     metadata=METADATA))
    event = json.loads(out.content)
    time = event.pop("time")
    assert time.endswith("Z")
    assert event == {"specversion": "1.0", "id": "k1", "type": "demo-events",
                     "source": "kafka://orders/2/40", **data}
    assert out.headers["content-type"] == ["application/cloudevents+json"]


def test_cloud_events_falls_back_to_ce_headers_and_message_id():
    msg = message(b"{}", headers={"ce_type": ["t"], "ce_source": ["s"], "ce_subject": ["sub"]})
    out, _ = run("cloud-events", {}, msg)
    event = json.loads(out.content)
    assert (event["id"], event["type"], event["source"], event["subject"]) == (
        msg.id, "t", "s", "sub")


def test_cloud_events_without_type_drops():
    out, policy = run("cloud-events", {"source": "s"}, message(b"{}"))
    assert out is None and policy.errors == 1


def test_cloud_events_validation():
    found = dict(CloudEventsPolicy.validate_configuration({"id": "{#a ==}", "type": 3}, None))
    assert "position" in found[".id"] and "string" in found[".type"]

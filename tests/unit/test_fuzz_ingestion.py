"""Fuzz: no body sent to the http-post entrypoint (single records and batches, NDJSON and
JSON arrays, with or without Content-Length) yields a 5xx or a traceback.

Served through the gateway's WSGI app (the raw fast path) with the `mock` endpoint, as
tests/unit/test_wsgi_dispatch.py builds it."""
from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from evgate.app import create_app
from evgate.config import Config
from evgate.gateway.runtime import GatewayRuntime, Snapshot


def _api(path: str, configuration: dict) -> dict:
    return {
        "id": str(uuid.uuid4()), "name": f"api {path}", "apiVersion": "1.0",
        "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post", "configuration": configuration}]}],
        "endpointGroups": [{"name": "default", "type": "mock", "endpoints": [{
            "name": "default", "type": "mock",
            "configuration": {"messageInterval": 1, "messageCount": 1}}]}],
        "flows": [],
    }


@pytest.fixture()
def gateway(database_url):
    config = Config.from_env({}, database_url=database_url, max_message_size=65536,
                             max_batch_records=100)
    runtime = GatewayRuntime(config, None)
    apis = [_api("/single", {}), _api("/batch", {"batch": True})]
    plans = {a["id"]: [{"id": f"keyless-{a['id']}", "name": "Keyless",
                        "security": {"type": "key-less"}, "status": "published"}] for a in apis}
    runtime.apply(Snapshot(1, [{"id": a["id"], "deployed_definition": a} for a in apis], plans))
    app = create_app(config, runtime=runtime, start=False)
    yield app
    runtime.stop(timeout=1)


def _deep(depth: int, opener: bytes, closed: bool) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    return opener * depth + b"1" + (closer * depth if closed else b"")


_records = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10)
    | st.sampled_from(["\ud800", "[", "\"", "\\", "\n"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=15)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v).encode(), st.lists(_records, max_size=20)),
    st.builds(lambda v: b"\n".join(json.dumps(r).encode() for r in v),
              st.lists(_records, max_size=20)),
    st.builds(_deep, st.integers(min_value=1, max_value=100000), st.sampled_from([b"[", b'{"a":']),
              st.booleans()),
    st.builds(lambda d: b"[" + _deep(d, b"[", True) + b"]", st.integers(1, 100000)),
    st.builds(lambda d: b'{"ok": 1}\n' + _deep(d, b"[", True), st.integers(1, 100000)),
    st.builds(lambda n: b"[" + b"1," * n + b"1]", st.integers(0, 300)),
    st.builds(lambda n: b"x" * n, st.sampled_from([65536, 65537, 200000])),
    st.sampled_from([b"[NaN]", b'["\xed\xa0\x80"]', b"[1,]", b"[", b"]", b"", b"[]", b"\xff",
                     b'["\\ud800"]', b"[1e99999]", b"[" + b"1" * 5000 + b"]"]),
)
_content_types = st.sampled_from(["application/json", "application/x-ndjson", "text/plain",
                                  "application/octet-stream", None])


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(path=st.sampled_from(["/single", "/batch"]), body=_bodies, content_type=_content_types,
       chunked=st.booleans(),
       key=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=0x10ffff,
                                              exclude_characters="\x7f"), max_size=5))
def test_no_ingestion_body_yields_a_5xx_or_a_traceback(gateway, caplog, path, body,
                                                       content_type, chunked, key):
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if key:
        headers["X-Kafka-Key"] = key.encode("utf-8", "surrogatepass").decode("latin-1")
    kwargs = ({"input_stream": io.BytesIO(body),
               "environ_overrides": {"wsgi.input_terminated": True}} if chunked
              else {"data": body})
    with caplog.at_level(logging.ERROR, logger="evgate"):
        response = gateway.test_client().post(path, headers=headers, **kwargs)
    text = response.get_data(as_text=True)
    assert response.status_code < 500, (path, content_type, body[:200], text[:500])
    assert "Traceback" not in text
    if text:
        json.loads(text)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[:2000]


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b"[" * 100000 + b"]" * 100000),
    ("application/json", b"[" + b"[" * 129 + b"]" * 129 + b"]"),
    ("application/x-ndjson", b'{"ok": 1}\n' + b"[" * 100000 + b"]" * 100000),
    ("application/x-ndjson", b"[" * 129 + b"]" * 129),
])
def test_batches_nested_too_deep_are_400(gateway, content_type, body):
    response = gateway.test_client().post("/batch", data=body,
                                          headers={"Content-Type": content_type})
    assert response.status_code == 400, response.get_data(True)
    error = response.get_json()
    assert error["key"] == "BATCH_INVALID"
    assert "a batch record nests arrays/objects deeper than 128 levels" in error["message"]


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b"[" + b"[" * 128 + b"]" * 128 + b"]"),
    ("application/x-ndjson", b"[" * 128 + b"]" * 128),
])
def test_batches_at_the_depth_limit_are_accepted(gateway, content_type, body):
    response = gateway.test_client().post("/batch", data=body,
                                          headers={"Content-Type": content_type})
    assert response.status_code == 202, response.get_data(True)
    assert response.get_json()["accepted"] == 1


def test_chunked_bodies_over_the_size_limit_are_413(gateway):
    client = gateway.test_client()
    for path, size in (("/single", 65537), ("/batch", 65536 * 100 + 1)):
        response = client.post(path, input_stream=io.BytesIO(b"x" * size),
                               environ_overrides={"wsgi.input_terminated": True},
                               headers={"Content-Type": "text/plain"})
        assert response.status_code == 413, (path, response.get_data(True))


# -- the all-accepted batch body, written without a dict per record (issue 11) ----------------------
_topics = st.text(min_size=1, max_size=12)   # any text: quotes, backslashes, non-ASCII


@settings(max_examples=200, deadline=None, database=None)
@given(delivered=st.lists(st.tuples(_topics, st.integers(0, 2**31), st.integers(-1, 2**62)),
                          max_size=30))
def test_the_accepted_batch_body_is_what_json_dumps_writes(delivered):
    from evgate.core.outcomes import Delivered
    from evgate.entrypoints.http_post import _accepted_body
    outcomes = [Delivered(*d) for d in delivered]
    expected = json.dumps({"accepted": len(outcomes), "failed": 0, "results": [
        {"index": i, "status": "accepted", "topic": o.topic, "partition": o.partition,
         "offset": o.offset} for i, o in enumerate(outcomes)]})
    assert _accepted_body(outcomes) == expected


def test_a_batch_with_a_failed_or_filtered_record_takes_the_full_path():
    from evgate.core.outcomes import Delivered
    from evgate.entrypoints.http_post import HttpPostEntrypoint, _accepted_body
    from evgate.kafka.producer import ProduceError
    ok = Delivered("t", 0, 1)
    assert _accepted_body([ok, None]) is None
    assert _accepted_body([ProduceError("down"), ok]) is None
    response = HttpPostEntrypoint._batch_response([ok, ProduceError("down")])
    assert response.status_code == 207
    assert json.loads(response.get_data())["results"][1]["status"] == "failed"


_NDJSON_LINE = st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                 max_leaves=6).map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(["", " ", "\t", "1,2", "[1", "2]", "{}{}", "nul", "\"a\" x", "NaN",
                     "\u2028", "\u00e9", "[]\r", "  {\"a\": \"\u00e9 \"} "]),
    st.text(max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.lists(_NDJSON_LINE, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_the_strict_ndjson_path_splits_as_the_line_by_line_path(lines, newline):
    """`_split_strict` gives exactly `_split_ndjson`'s items, or None (never other items)
    where a line is not one strict JSON value: the line-by-line path then decides."""
    from evgate.entrypoints.http_post import _split_ndjson, _split_strict
    from evgate.errors import BadRequestError
    text = newline.join(line.replace("\n", " ") for line in lines)
    strict = _split_strict(text.encode("utf-8"), True)
    try:
        slow = _split_ndjson(text)
    except BadRequestError:
        assert strict is None
    else:
        assert strict is None or strict == slow


#: near-JSON: valid tokens, their near misses, and what json accepts beyond RFC 8259
_TOKENS = st.sampled_from([
    "{", "}", "[", "]", ",", ":", " ", "\t", "\r", "\n", "\x0c", "\x0b", "\u00a0", '"a"', '""',
    '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud800"', '"\\udc00x"', '"\\x"', '"\x01"', '"\x7f"',
    '"\u2028"', '"', "\\", "1", "-0", "0", "01", "1.", ".5", "1e999", "-1e-999", "1.5E+3", "+1",
    "123456789012345678901234567890", "NaN", "Infinity", "-Infinity", "true", "false",
    "null", "nul", "tru", "0x1", "\u00e9", "\ufeff", '{"a":1}', '{"a":1,"a":2}', "[1,]",
    '{"a"}', '{1:2}'])


@settings(max_examples=1500, deadline=None)
@given(st.lists(_TOKENS, max_size=14), st.booleans())
def test_the_strict_path_accepts_nothing_json_refuses(tokens, ndjson):
    """msgspec (`_split_strict`) accepts a subset of what json's scanner accepts, with the
    same items: with json as the fallback, a batch accepts exactly what json accepts."""
    from evgate.entrypoints.http_post import _split_array, _split_ndjson, _split_strict
    from evgate.errors import BadRequestError
    text = "".join(tokens)
    if not ndjson:
        text = "[" + text + "]"
    strict = _split_strict(text.encode("utf-8"), ndjson)
    try:
        slow = _split_ndjson(text) if ndjson else _split_array(text)
    except BadRequestError:
        assert strict is None, text
    else:
        assert strict is None or strict == slow, text


@pytest.mark.parametrize("body, ndjson, strict, records", [
    (b'[{"a": [1, "x"]}, 2 , "\\u00e9", 123456789012345678901234567890, 1e999]', False, True, 5),
    (b'{"a": 1}\r\n\n  [2]\t\n"\xc3\xa9"', True, True, 3),
    (b"[NaN, 1]", False, False, 2), (b'["\\ud800"]', False, False, 1),
    (b"Infinity\n1", True, False, 2),
])
def test_what_json_accepts_beyond_rfc_8259_is_still_a_batch(gateway, body, ndjson, strict,
                                                            records):
    """NaN, Infinity and lone surrogate escapes: refused by msgspec, accepted through the
    json path as before (the accepted set did not change)."""
    from evgate.entrypoints.http_post import _split_strict
    assert (_split_strict(body, ndjson) is not None) is strict
    response = gateway.test_client().post("/batch", data=body, headers={
        "Content-Type": "application/x-ndjson" if ndjson else "application/json"})
    assert response.status_code == 202, response.get_data(True)
    assert response.get_json()["accepted"] == records

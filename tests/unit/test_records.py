"""One record -> Message conversion for every entrypoint (evgate/kafka/records.py), tombstones on
each wire format, and the WebSocket envelope. Records are real confluent_kafka.Message objects."""
from __future__ import annotations

import base64
import json

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE
from confluent_kafka import Message as Record

from evgate.entrypoints.sse import encode_event
from evgate.entrypoints.websocket import envelope_requested, ws_envelope, ws_payload
from evgate.errors import BadRequestError
from evgate.kafka.records import record_to_message
from evgate.kafka.group_consumer import group_item

METADATA = {"key": "order-7", "timestamp": 1_700_000_000_123, "topic": "orders",
            "partition": 2, "offset": 41}


def record(value=b'{"a":1}', key=b"order-7", headers=(("h", b"v"),),
           timestamp=(TIMESTAMP_CREATE_TIME, 1_700_000_000_123)):
    return Record(topic="orders", partition=2, offset=41, key=key, value=value,
                  headers=list(headers), timestamp=timestamp)


def test_streams_and_webhooks_see_the_same_metadata():
    stream = record_to_message(record(), "cursor-1")
    item = group_item(record(), generation=3)   # what the kafka group stream hands webhooks
    hook = item.message
    assert stream.metadata == hook.metadata == METADATA
    assert stream.headers == hook.headers == {"h": ["v"]}
    assert stream.content == hook.content == b'{"a":1}'
    assert stream.id == "cursor-1" and hook.id == "orders@2#41"
    assert not stream.tombstone
    assert (item.partition_key, item.offset, item.generation) == (("orders", 2), 41, 3)


def test_group_items_keep_the_record_as_stored_for_the_dlq():
    """Binary key and headers reach the DLQ byte for byte (the message decodes them as text)."""
    item = group_item(record(value=None, key=b"\xff\x00", headers=[("h", b"\xfe")]), 1)
    assert (item.key, item.value, item.headers) == (b"\xff\x00", None, [("h", b"\xfe")])
    assert item.message.tombstone and item.message.headers == {"h": ["\ufffd"]}


def test_missing_timestamp_and_key_are_none():
    message = record_to_message(record(key=None, timestamp=(TIMESTAMP_NOT_AVAILABLE, 0)), "c")
    assert message.metadata["key"] is None and message.metadata["timestamp"] is None


def test_null_header_value_keeps_its_name():
    assert record_to_message(record(headers=[("h", None)]), "c").headers == {"h": [""]}


def test_policies_read_the_timestamp_on_streams():
    """#message.metadata.timestamp existed for webhook policies only before."""
    from evgate.el import compile_template
    expression = compile_template("{#message.metadata.timestamp > 1000}")
    message = record_to_message(record(), "c")
    assert expression.evaluate({"message": message}) is True


def test_tombstone_is_a_deletion_not_an_empty_message():
    message = record_to_message(record(value=None), "Y3Vyc29y")
    assert message.tombstone and message.content == b""
    frame = encode_event(message, "Y3Vyc29y").decode()
    assert frame == 'id: Y3Vyc29y\nevent: delete\ndata: {"key": "order-7"}\n\n'
    assert ws_payload(message, "c") is None   # raw frames cannot say "deleted": nothing sent
    envelope = json.loads(ws_envelope(message, "Y3Vyc29y"))
    assert envelope == {"id": "Y3Vyc29y", "content": None, "deleted": True,
                        "headers": {"h": ["v"]}, "metadata": METADATA}
    # an empty (not null) value stays a message
    empty = record_to_message(record(value=b""), "c")
    assert not empty.tombstone
    assert "event: message" in encode_event(empty, "c").decode()


def test_http_get_item_of_a_tombstone_has_null_content():
    from evgate.entrypoints.http_get import HttpGetEntrypoint, _plain, _xml
    entrypoint = HttpGetEntrypoint.__new__(HttpGetEntrypoint)
    entrypoint.headers_in_payload = entrypoint.metadata_in_payload = True
    item = entrypoint._item(record_to_message(record(value=None), "c"), "c")
    assert item["content"] is None and item["deleted"] is True
    assert item["metadata"] == METADATA
    pagination = {"nextCursor": "c", "limit": 1}
    assert "<deleted>true</deleted>" in _xml([item], pagination)
    assert "<content>" not in _xml([item], pagination)
    assert "deleted: true" in _plain([item], pagination)


def test_envelope_of_text_and_binary_content():
    text = json.loads(ws_envelope(record_to_message(record(value="é".encode()), "c1"), "c1"))
    assert text["id"] == "c1" and text["content"] == "é" and "encoding" not in text
    assert text["metadata"] == METADATA
    raw = b"\xff\x00\xfe"
    binary = json.loads(ws_envelope(record_to_message(record(value=raw), "c2"), "c2"))
    assert binary["encoding"] == "base64"
    assert base64.b64decode(binary["content"]) == raw


class _Args:
    def __init__(self, **args):
        self.args = args


@pytest.mark.parametrize("value, expected", [
    (None, False), ("true", True), ("TRUE", True), ("1", True), ("", True), ("false", False),
    ("0", False)])
def test_envelope_parameter(value, expected):
    args = {} if value is None else {"envelope": value}
    assert envelope_requested(_Args(**args)) is expected


def test_bad_envelope_parameter_is_400():
    with pytest.raises(BadRequestError) as raised:
        envelope_requested(_Args(envelope="yes please"))
    assert raised.value.key == "INVALID_ENVELOPE"


def test_policies_can_tell_a_tombstone():
    from evgate.el import compile_template
    expression = compile_template("{#message.tombstone}")
    assert expression.evaluate({"message": record_to_message(record(value=None), "c")}) is True
    assert expression.evaluate({"message": record_to_message(record(), "c")}) is False


def _lazy_item(value):
    from evgate.core.stream import StreamItem
    return StreamItem(None, "cursor-9", ("orders", 2), 41, source=record(value=value),
                      build=record_to_message, size=len(value or b""))


def test_a_stream_item_builds_its_message_only_when_asked_and_the_same_as_eagerly():
    item = _lazy_item(b'{"a":1}')
    assert item.content == b'{"a":1}' and item._message is None     # value without a Message
    message = item.message
    eager = record_to_message(record(), "cursor-9")
    assert (message.content, message.headers, message.metadata, message.id, message.tombstone) \
        == (eager.content, eager.headers, eager.metadata, eager.id, eager.tombstone)
    assert item.message is message and item._source is None          # built once, record freed
    assert item.size == 7 and item.content == b'{"a":1}'


def test_a_lazy_tombstone_has_no_content_and_its_message_is_a_deletion():
    item = _lazy_item(None)
    assert item.content is None and item.size == 0
    assert item.message.tombstone and item.message.content == b""
    assert item.content is None                                        # after the build too
    frame = item.frame("sse", lambda m, c: encode_event(m, c))
    assert b"event: delete" in frame

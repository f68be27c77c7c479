"""The one conversion of a Kafka record into a `Message`, used by every consumer of records.

Streams (SSE, WebSocket, http-get: evgate/kafka/consumer.py) and the group streams of webhooks
(evgate/kafka/group_consumer.py) call it, so every entrypoint and every policy sees the same
`#message.metadata`: `key` (text, or None), `timestamp` (epoch milliseconds, or None when the
record has none), `topic`, `partition`, `offset`. A record with a null value (a tombstone: a
compacted topic's "this key was deleted") becomes a message with `tombstone` set and empty
content, which the entrypoints write as a deletion (SSE `event: delete`, `"deleted": true`),
never as an empty message. It runs on the consumer's native thread: pure, no gevent.
"""
from __future__ import annotations

from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

from ..core.message import Message


def record_metadata(record: Any) -> dict[str, Any]:
    key = record.key()
    kind, timestamp = record.timestamp()
    return {"key": key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key,
            "timestamp": None if kind == TIMESTAMP_NOT_AVAILABLE else timestamp,
            "topic": record.topic(), "partition": record.partition(),
            "offset": record.offset()}


def record_headers(record: Any) -> dict[str, list[str]]:
    """Multi-valued text headers; a header with a null value keeps its name (value "")."""
    headers: dict[str, list[str]] = {}
    for name, value in record.headers() or ():
        if value is None:
            text = ""
        elif isinstance(value, bytes):
            text = value.decode("utf-8", errors="replace")
        else:
            text = str(value)
        headers.setdefault(name, []).append(text)
    return headers


def record_to_message(record: Any, message_id: str) -> Message:
    value = record.value()
    return Message(content=value if value is not None else b"", headers=record_headers(record),
                   metadata=record_metadata(record), id=message_id, tombstone=value is None)

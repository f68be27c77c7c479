"""http-post: each request body becomes one message produced to the endpoint; 202 once acked.

Configuration:
- `requestHeadersToMessage` (default false): copy the request headers into message headers
  (and so into Kafka record headers). Hop-by-hop headers are never copied.
- `batch` (evgate extension, default false): accept `application/x-ndjson` (one message per
  line) or a JSON array (one message per element) and answer 207-style per-record results
  once every record is acknowledged (see docs/entrypoints.md).

The record key comes from the `X-Kafka-Key` request header when present (it sets the message
attribute `gravitee.attribute.kafka.recordKey`).
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from flask import Response

from ..errors import (BackendUnavailableError, BadRequestError, GatewayError,
                      PayloadTooLargeError)
from ..endpoints.kafka import RECORD_KEY_ATTRIBUTE
from ..kafka.producer import ProduceError
from ..message import Message
from .base import Entrypoint

if TYPE_CHECKING:
    from ..gateway.context import ExecutionContext

logger = logging.getLogger(__name__)

RECORD_KEY_HEADER = "X-Kafka-Key"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "transfer-encoding", "upgrade", "content-length", "host"}
_SENSITIVE = {"authorization", "cookie", "x-gravitee-api-key", "proxy-authorization"}


class HttpPostEntrypoint(Entrypoint):
    type = "http-post"
    modes = frozenset({"publish"})
    methods = frozenset({"POST"})
    priority = 40
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        for flag in ("requestHeadersToMessage", "batch"):
            if flag in configuration and not isinstance(configuration[flag], bool):
                yield f".{flag}", "must be true or false"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.headers_to_message = bool(self.configuration.get("requestHeadersToMessage", False))
        self.batch = bool(self.configuration.get("batch", False))

    def handle(self, ctx: "ExecutionContext") -> Response:
        request = ctx.request
        config = self.api.runtime.config
        limit = config.max_message_size * (config.max_batch_records if self.batch else 1)
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")

        if self.batch and _is_batch(request, body):
            return self._handle_batch(ctx, body)
        message = self._message(ctx, body)
        kept = self.api.publish_messages([message], ctx)
        if kept:
            self._raise_on_failure(self.api.endpoint.publish(kept, ctx)[0])
        return Response(b"", status=202, content_type="text/plain")

    def _message(self, ctx: "ExecutionContext", content: bytes) -> Message:
        message = Message(content=content)
        request = ctx.request
        if self.headers_to_message:
            for name, value in request.headers.items():
                lowered = name.lower()
                if lowered not in _HOP_BY_HOP and lowered not in _SENSITIVE:
                    message.add_header(name, value)
        key = request.headers.get(RECORD_KEY_HEADER)
        if key:
            message.attributes[RECORD_KEY_ATTRIBUTE] = key
        return message

    @staticmethod
    def _raise_on_failure(outcome: Any) -> None:
        if isinstance(outcome, ProduceError):
            logger.warning("produce failed: %s", outcome)
            if outcome.retriable:
                raise BackendUnavailableError(f"Kafka did not acknowledge the message: {outcome}")
            raise GatewayError(f"Kafka refused the message: {outcome}", key="PRODUCE_FAILED")
        if isinstance(outcome, GatewayError):
            raise outcome
        if isinstance(outcome, Exception):
            raise BackendUnavailableError(f"the message could not be delivered: {outcome}")

    def _handle_batch(self, ctx: "ExecutionContext", body: bytes) -> Response:
        config = self.api.runtime.config
        items = _split_batch(ctx.request.mimetype, body)
        if len(items) > config.max_batch_records:
            raise PayloadTooLargeError(f"a batch may carry at most {config.max_batch_records} "
                                       f"records, got {len(items)}")
        for index, item in enumerate(items):
            if len(item) > config.max_message_size:
                raise PayloadTooLargeError(f"record {index} exceeds {config.max_message_size} bytes")
        messages = [self._message(ctx, item) for item in items]
        kept_ids = {id(m) for m in self.api.publish_messages(messages, ctx)}
        to_send = [m for m in messages if id(m) in kept_ids]
        outcomes = iter(self.api.endpoint.publish(to_send, ctx) if to_send else [])
        results, failed = [], 0
        for index, message in enumerate(messages):
            if id(message) not in kept_ids:
                results.append({"index": index, "status": "filtered"})
                continue
            outcome = next(outcomes)
            if isinstance(outcome, Exception):
                failed += 1
                results.append({"index": index, "status": "failed", "error": str(outcome),
                                "retriable": bool(getattr(outcome, "retriable", True))})
            else:
                results.append({"index": index, "status": "accepted", "topic": outcome.topic,
                                "partition": outcome.partition, "offset": outcome.offset})
        status = 202 if failed == 0 else (503 if failed == len(messages) else 207)
        body_out = {"accepted": len(messages) - failed, "failed": failed, "results": results}
        response = Response(json.dumps(body_out), status=status, mimetype="application/json")
        if status == 503:
            response.headers["Retry-After"] = "1"
        return response


def _is_batch(request: Any, body: bytes) -> bool:
    """NDJSON is always a batch; JSON only when it is an array (an object is one message)."""
    if request.mimetype == "application/x-ndjson":
        return True
    return request.mimetype == "application/json" and body.lstrip().startswith(b"[")


def _split_batch(mimetype: str, body: bytes) -> list[bytes]:
    if mimetype == "application/x-ndjson":
        lines = [line.strip() for line in body.split(b"\n")]
        items = [line for line in lines if line]
        for number, line in enumerate(items):
            try:
                json.loads(line)
            except ValueError as exc:
                raise BadRequestError(f"NDJSON line {number + 1} is not valid JSON: {exc}",
                                      key="BATCH_INVALID") from None
        return items
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadRequestError(f"body is not valid JSON: {exc}", key="BATCH_INVALID") from None
    if not isinstance(data, list):
        raise BadRequestError("a JSON batch must be an array of records", key="BATCH_INVALID")
    return [json.dumps(item, separators=(",", ":")).encode("utf-8") for item in data]

"""http-post: each request body becomes one message produced to the endpoint; 202 once acked.

Configuration:
- `requestHeadersToMessage` (default false): copy the request headers into message headers
  (and so into Kafka record headers). Hop-by-hop headers are never copied.
- `batch` (evgate extension, default false): accept `application/x-ndjson` (one message per
  line) or a JSON array (one message per element) and answer 207-style per-record results
  once every record is acknowledged (see docs/entrypoints.md). Batch bodies are checked for
  nesting depth (EVGATE_BATCH_MAX_JSON_DEPTH) before they are parsed; single-record bodies
  are never parsed.

The record key comes from the `X-Kafka-Key` request header when present (it sets the message
attribute `gravitee.attribute.kafka.recordKey`).
"""
from __future__ import annotations

import json
import logging
from collections import deque
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Sequence

import msgspec
from flask import Response

from ..definition.plugin_config import Flag, PluginConfiguration
from .. import jsoninput
from ..errors import (BackendUnavailableError, BadGatewayError, BadRequestError, GatewayError,
                      PayloadTooLargeError)
from ..core.ids import new_id
from ..core.message import RECORD_KEY_ATTRIBUTE, Message
from ..core.outcomes import Delivered, PublishFailed
from .base import Entrypoint

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)

RECORD_KEY_HEADER = "X-Kafka-Key"
_RECORD_KEY_ENVIRON = "HTTP_" + RECORD_KEY_HEADER.upper().replace("-", "_")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "transfer-encoding", "upgrade", "content-length", "host"}
_SENSITIVE = {"authorization", "cookie", "x-gravitee-api-key", "proxy-authorization"}


class HttpPostConfiguration(PluginConfiguration):
    requestHeadersToMessage: Flag = False
    batch: Flag = False


class HttpPostEntrypoint(Entrypoint):
    type = "http-post"
    configuration_model = HttpPostConfiguration
    modes = frozenset({"publish"})
    methods = frozenset({"POST"})
    priority = 40
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})
    raw_wsgi = True  # served without Flask's request context (evgate/gateway/wsgi_dispatch.py)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.headers_to_message = bool(self.configuration.get("requestHeadersToMessage", False))
        self.batch = bool(self.configuration.get("batch", False))

    def handle(self, ctx: "ExecutionContext") -> Response:
        request = ctx.request
        config = self.api.runtime.config
        limit = config.max_message_size * (config.max_batch_records if self.batch else 1)
        environ = request.environ
        if _declared_length(environ) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        # werkzeug's `request.stream` is wsgi.input itself when the server terminates the
        # input (gunicorn, gevent's pywsgi) and MAX_CONTENT_LENGTH is None (evgate/app.py:
        # entrypoints enforce their own limit): taken directly, without the property's
        # per-request app-config lookups (~8 us, bench/ingest.py)
        stream = environ["wsgi.input"] if "wsgi.input_terminated" in environ \
            else request.stream
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")

        if self.batch and _is_batch(request, body):
            return self._handle_batch(ctx, body)
        headers, key = self._request_headers_and_key(ctx)
        # no publish-phase step: the body goes to Kafka as it is, no Message (as for batches)
        outcomes = self.api.publish_contents((body,), ctx, key=key, headers=headers)
        if outcomes is not None:
            outcome = outcomes[0]
        else:
            outcome = self.api.publish_one(self._message_factory(ctx)(body), ctx)
        if outcome is not None:
            self._raise_on_failure(outcome)
        return Response(b"", status=202, content_type="text/plain")

    def _message_factory(self, ctx: "ExecutionContext") -> Callable[[bytes], Message]:
        """Builds the request's messages: headers and key are read from the request once, not
        once per record of a batch (that showed up in bench/ingest.py's profile)."""
        headers, key = self._request_headers_and_key(ctx)

        def build(content: bytes) -> Message:
            message = Message(content=content, id=new_id())
            for name, value in headers:
                message.headers.setdefault(name, []).append(value)
            if key:
                message.attributes[RECORD_KEY_ATTRIBUTE] = key
            return message
        return build

    def _request_headers_and_key(self, ctx: "ExecutionContext"
                                 ) -> tuple[list[tuple[str, str]], str | None]:
        """The headers copied into each message (`requestHeadersToMessage`) and the record
        key (X-Kafka-Key), read from the request once, not once per record of a batch."""
        request = ctx.request
        headers: list[tuple[str, str]] = []
        if self.headers_to_message:
            headers = [(name, value) for name, value in request.headers.items()
                       if name.lower() not in _HOP_BY_HOP and name.lower() not in _SENSITIVE]
        # from the environ: werkzeug's headers.get builds a KeyError (a BadRequestKeyError
        # with its description) for every request without the header
        return headers, request.environ.get(_RECORD_KEY_ENVIRON)

    @staticmethod
    def _raise_on_failure(outcome: Any) -> None:
        if isinstance(outcome, PublishFailed):
            logger.warning("produce failed: %s", outcome)
            if outcome.retriable:
                raise BackendUnavailableError(f"Kafka did not acknowledge the message: {outcome}")
            if outcome.too_large:
                raise PayloadTooLargeError(f"Kafka refused the message as too large: {outcome}")
            raise BadGatewayError(f"Kafka refused the message: {outcome}", key="PRODUCE_FAILED")
        if isinstance(outcome, GatewayError):
            raise outcome
        if isinstance(outcome, Exception):
            raise BackendUnavailableError(f"the message could not be delivered: {outcome}")

    def _handle_batch(self, ctx: "ExecutionContext", body: bytes) -> Response:
        config = self.api.runtime.config
        items = _split_batch(ctx.request.mimetype, body, config.batch_max_json_depth)
        if len(items) > config.max_batch_records:
            raise PayloadTooLargeError(f"a batch may carry at most {config.max_batch_records} "
                                       f"records, got {len(items)}")
        if items and max(map(len, items)) > config.max_message_size:
            index = next(i for i, item in enumerate(items) if len(item) > config.max_message_size)
            raise PayloadTooLargeError(f"record {index} exceeds {config.max_message_size} bytes")
        headers, key = self._request_headers_and_key(ctx)
        # no publish-phase step: the payloads go to Kafka as they are, no Message each
        outcomes = self.api.publish_contents(items, ctx, key=key, headers=headers)
        if outcomes is None:
            build = self._message_factory(ctx)
            outcomes = self.api.publish([build(item) for item in items], ctx)
        return self._batch_response(outcomes)

    @staticmethod
    def _batch_response(outcomes: Sequence[Any]) -> Response:
        """The per-record results, one per record in order: None for a record a publish-phase
        policy dropped ("filtered")."""
        total = len(outcomes)
        fast = _accepted_body(outcomes)
        if fast is not None:
            return Response(fast, status=202, mimetype="application/json")
        results, failed = [], 0
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                results.append({"index": index, "status": "filtered"})
                continue
            if isinstance(outcome, Exception):
                failed += 1
                results.append({"index": index, "status": "failed", "error": str(outcome),
                                "retriable": bool(getattr(outcome, "retriable", True))})
            else:
                results.append({"index": index, "status": "accepted", "topic": outcome.topic,
                                "partition": outcome.partition, "offset": outcome.offset})
        status = 202 if failed == 0 else (503 if failed == total else 207)
        body_out = {"accepted": total - failed, "failed": failed, "results": results}
        response = Response(json.dumps(body_out), status=status, mimetype="application/json")
        if status == 503:
            response.headers["Retry-After"] = "1"
        return response


def _declared_length(environ: dict[str, Any]) -> int:
    """The request's Content-Length as werkzeug's `request.content_length` reads it, 0 when
    absent, chunked or not a number (the read below is bounded anyway): from the environ,
    without the request's cached property and header view (~2 % of a single-record POST's
    CPU, docs/benchmarks.md issue 11 tenth pass)."""
    declared = environ.get("CONTENT_LENGTH")
    if not declared or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return 0
    declared = declared.strip()
    if declared.isascii() and declared.isdigit():
        return int(declared)
    return 0


def _accepted_body(outcomes: Sequence[Any]) -> str | None:
    """The body `_batch_response` gives when every record was accepted, written without a
    dict per record (json.dumps of 1,000 result dicts cost ~10 % of a batch's CPU,
    bench/ingest.py); the same text json.dumps writes. None when any record was not
    accepted."""
    quoted: dict[str, str] = {}
    parts: list[str] = []
    append = parts.append
    for index, outcome in enumerate(outcomes):
        if type(outcome) is not Delivered:
            return None
        topic, partition, offset = outcome
        text = quoted.get(topic)
        if text is None:
            text = quoted[topic] = json.dumps(topic)
        append(f'{{"index": {index}, "status": "accepted", "topic": {text}, '
               f'"partition": {partition}, "offset": {offset}}}')
    return ('{"accepted": %d, "failed": 0, "results": [%s]}'
            % (len(outcomes), ", ".join(parts)))


def _is_batch(request: Any, body: bytes) -> bool:
    """NDJSON is always a batch; JSON only when it is an array (an object is one message)."""
    if request.mimetype == "application/x-ndjson":
        return True
    return request.mimetype == "application/json" and body.lstrip().startswith(b"[")


_decoder = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def _split_batch(mimetype: str, body: bytes, max_depth: int) -> list[bytes]:
    """The records of a batch body, each exactly the bytes the client sent for it.

    The nesting depth is checked first, on the bytes, without recursion (the parsers recurse
    per level: 100,000 levels were a RecursionError); a JSON array's own level does not count.
    Then `_split_strict` validates the records without building their objects; what it
    refuses goes through `_split_ndjson` / `_split_array` (json's scanner, one `raw_decode`
    per item, a JSON array's items sliced out of the text, not re-serialised), which accept
    what json accepts and name the first bad record."""
    ndjson = mimetype == "application/x-ndjson"
    jsoninput.check_depth(body, max_depth, outer_levels=0 if ndjson else 1,
                          what="a batch record", key="BATCH_INVALID")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"body is not valid UTF-8: {exc}", key="BATCH_INVALID") from None
    items = _split_strict(body, ndjson)
    if items is not None:
        return items
    return _split_ndjson(text) if ndjson else _split_array(text)


_WHITESPACE_BYTES = _WHITESPACE.encode("ascii")
#: msgspec's JSON decoder into `Raw` checks each value's syntax (RFC 8259) and keeps only
#: where it lies in the bytes: no Python object per string, number or container
_RAW_VALUE = msgspec.json.Decoder(msgspec.Raw)
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


def _split_strict(body: bytes, ndjson: bool) -> list[bytes] | None:
    """`_split_ndjson` / `_split_array`'s items for a UTF-8 body whose records are all strict
    JSON, ~4-10x faster (bench/ingest.py); None when msgspec refuses anything. json accepts
    more than RFC 8259 (NaN, Infinity, lone surrogate escapes) and msgspec nothing json
    refuses (tests/unit/test_fuzz_ingestion.py), so with the fallback a batch accepts exactly
    what it accepted with json alone."""
    try:
        if ndjson:
            items = list(filter(None, map(bytes.strip, body.split(b"\n"),
                                          repeat(_WHITESPACE_BYTES))))
            deque(map(_RAW_VALUE.decode, items), 0)   # each line exactly one JSON value
            return items
        return list(map(bytes, _RAW_ARRAY.decode(body)))
    except (msgspec.DecodeError, RecursionError):
        return None


def _split_ndjson(text: str) -> list[bytes]:
    items = []
    for line in text.split("\n"):
        line = line.strip(_WHITESPACE)
        if not line:
            continue
        try:
            _, end = _decoder.raw_decode(line)
            if end != len(line):
                raise ValueError(f"Extra data: column {end + 1}")
        except ValueError as exc:
            raise BadRequestError(f"NDJSON line {len(items) + 1} is not valid JSON: {exc}",
                                  key="BATCH_INVALID") from None
        items.append(line.encode("utf-8"))
    return items


def _split_array(text: str) -> list[bytes]:
    def invalid(reason: str) -> BadRequestError:
        return BadRequestError(f"body is not valid JSON: {reason}", key="BATCH_INVALID")

    def skip(index: int) -> int:
        while index < length and text[index] in _WHITESPACE:
            index += 1
        return index

    length = len(text)
    index = skip(0)
    if index == length or text[index] != "[":
        raise BadRequestError("a JSON batch must be an array of records", key="BATCH_INVALID")
    items: list[bytes] = []
    index = skip(index + 1)
    if index < length and text[index] == "]":
        index += 1
    else:
        while True:
            try:
                _, end = _decoder.raw_decode(text, index)
            except ValueError as exc:
                raise invalid(str(exc)) from None
            items.append(text[index:end].encode("utf-8"))
            index = skip(end)
            if index < length and text[index] == ",":
                index = skip(index + 1)
                continue
            if index < length and text[index] == "]":
                index += 1
                break
            raise invalid(f"expected ',' or ']' at char {index}")
    if skip(index) != length:
        raise invalid(f"extra data at char {skip(index)}")
    return items

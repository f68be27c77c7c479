"""Live view: the messages of a Kafka-backed API as they arrive, streamed to the page (SSE).

It reads through the gateway's own consumption path: a `ConsumerPool` (one per management
worker, created on first use) and its shared tail, i.e. a confluent-kafka consumer on a native
thread that `assign()`s every partition at its high watermark: no consumer group is joined and
nothing is committed (evgate/kafka/consumer.py), so no client's group is rebalanced or moved
and no subscriber can lose a record because someone watched. Viewers of the same API on one
worker share that one consumer. Chosen over proxying the gateway's SSE: the gateway's SSE
entrypoint needs a plan the operator may not have (keyless, or a key), runs the API's
subscribe flow (which could hide the very messages being debugged) and may sit behind
another node; the pool needs only the definition the console already reads.

Bounds: at most EVGATE_CONSOLE_LIVE_MAX_VIEWERS streams per worker (503 past it); each stream
buffers at most `CAPACITY` messages on the server (a viewer that cannot keep up is cut, the
page offers to reconnect) and ends after EVGATE_CONSOLE_LIVE_MAX_SECONDS; the page keeps the
last rows only (static/console.js). Bodies are cut at `MAX_CONTENT` characters.

The filter box takes the message-filtering policy's EL (`{#jsonPath(#message.content,
'$.x') == 1}`), compiled once per stream and evaluated per message with `#message`; a bad
expression is a 400 naming the problem; a message the filter fails on is skipped and counted.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterator

from flask import (Flask, Response, abort, current_app, render_template, request,
                   stream_with_context)

from ...el import ExpressionError, compile_template
from ...errors import BackendUnavailableError, BadRequestError
from ..resources import services
from .blueprint import bp, is_admin

logger = logging.getLogger(__name__)

CAPACITY = 500          # messages waiting on the server per viewer
MAX_CONTENT = 4096      # characters of a body shown
FILTER_EXAMPLE = "{#jsonPath(#message.content, '$.kind') == 'order'}"
HEARTBEAT = 5.0         # seconds between keep-alive comments (and client-gone detection)


class LiveViews:
    """The live streams of one management worker: the consumer pool and the viewer count."""

    def __init__(self, config: Any):
        self.config = config
        self.viewers = 0
        self._pool: Any = None

    @property
    def pool(self) -> Any:
        if self._pool is None:  # after the fork, in the worker, on first use
            from ...kafka.consumer_pool import ConsumerPool
            self._pool = ConsumerPool(self.config)
        return self._pool


def init_app(app: Flask, config: Any) -> None:
    app.extensions["evgate.console.live"] = LiveViews(config)


def kafka_endpoint(api_id: str) -> tuple[dict[str, Any], list[str]]:
    """The effective configuration and topics of the API's first kafka endpoint (deployed
    definition, else saved), with its secrets in clear: read on the server, never shown."""
    from ...definition import parse_definition
    from ...definition.validate import effective_configuration
    services().apis.get(api_id)  # 404 for an API the caller may not see
    row = current_app.extensions["evgate.repository"].apis.get(api_id)
    definition = parse_definition(row["deployed_definition"] or row["definition"])
    for group in definition.endpointGroups:
        for endpoint in group.endpoints:
            if endpoint.type in ("kafka", "kafka-advanced") or group.type == "kafka":
                conf = effective_configuration(group, endpoint)
                topics = [t for t in conf.get("topics") or [] if isinstance(t, str) and t]
                if topics:
                    return conf, topics
    raise BadRequestError(f"API {api_id} has no kafka endpoint with topics: nothing to watch",
                          key="console.live.notKafka")


def compile_filter(source: str) -> Any:
    if not source.strip():
        return None
    try:
        return compile_template(source)
    except ExpressionError as exc:
        raise BadRequestError(f"filter: {exc}", key="console.live.filter") from None


def keep(template: Any, message: Any) -> bool | None:
    """True/False as the filter says; None when it fails on this message."""
    from ...policies.base import as_boolean
    if template is None:
        return True
    try:
        return as_boolean(template.evaluate({"message": message}), "the filter")
    except ExpressionError:
        return None


def row(item: Any) -> dict[str, Any]:
    message = item.message
    meta = message.metadata
    text = message.text
    return {"topic": meta.get("topic"), "partition": meta.get("partition"),
            "offset": meta.get("offset"), "timestamp": meta.get("timestamp"),
            "key": meta.get("key"), "headers": message.headers,
            "content": text[:MAX_CONTENT], "truncated": len(text) > MAX_CONTENT,
            "tombstone": message.tombstone}


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@bp.get("/apis/<api_id>/live")
def live(api_id: str) -> Any:
    if not is_admin():
        abort(403, description="the live view shows message contents: ADMIN role required")
    api = services().apis.get(api_id)
    source = request.args.get("filter", "")
    problem = None
    status = 200
    try:
        _, topics = kafka_endpoint(api_id)
        compile_filter(source)
    except BadRequestError as exc:
        problem, status, topics = exc.message, 400, []
    return render_template("live.html", api=api, topics=topics, filter=source,
                           problem=problem, example=FILTER_EXAMPLE), status


@bp.get("/apis/<api_id>/live/stream")
def live_stream(api_id: str) -> Response:
    if not is_admin():
        abort(403, description="the live view shows message contents: ADMIN role required")
    conf, topics = kafka_endpoint(api_id)
    template = compile_filter(request.args.get("filter", ""))
    views: LiveViews = current_app.extensions["evgate.console.live"]
    if views.viewers >= views.config.console_live_max_viewers:
        raise BackendUnavailableError(
            f"{views.viewers} live views are open on this worker (the most "
            "EVGATE_CONSOLE_LIVE_MAX_VIEWERS allows); close one or retry later", retry_after=10)
    label = f"console-live api={api_id} viewer={request.remote_addr}"
    subscription = views.pool.subscribe(conf, topics, position=None, group_id=None,
                                        qos="none", capacity=CAPACITY, label=label)
    views.viewers += 1
    logger.info("console live view opened: %s (%d open)", label, views.viewers)
    deadline = time.monotonic() + views.config.console_live_max_seconds
    closed = []

    def cleanup() -> None:
        """Once, from the generator's end or the server closing the response (which also
        happens when the client left before the first write, and the generator never ran)."""
        if closed:
            return
        closed.append(True)
        subscription.close("client-gone")
        views.viewers -= 1
        logger.info("console live view closed: %s (%d open)", label, views.viewers)

    def stream() -> Iterator[str]:
        from ...core.stream import SubscriptionClosed
        skipped = failed = 0
        try:
            yield "retry: 3000\n" + _sse("ready", {"topics": topics})
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    yield _sse("end", {"reason": "the live view reached its time limit"})
                    return
                try:
                    items = subscription.get(timeout=min(HEARTBEAT, left), limit=100)
                except SubscriptionClosed as ended:
                    yield _sse("end", {"reason": ended.detail or ended.kind})
                    return
                if not items:
                    yield ": ping\n\n"
                    continue
                out = []
                for item in items:
                    verdict = keep(template, item.message)
                    if verdict:
                        out.append(_sse("message", row(item)))
                    elif verdict is None:
                        failed += 1
                    else:
                        skipped += 1
                    subscription.delivered(item)
                if template is not None:
                    out.append(_sse("stats", {"skipped": skipped, "failed": failed}))
                yield "".join(out)
        finally:
            cleanup()

    response = Response(stream_with_context(stream()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    response.call_on_close(cleanup)
    return response

"""create_app(): the gateway Flask app (factory; nothing happens at import).

Every request goes through one dispatcher: listener path match (longest prefix) -> entrypoint
negotiation -> plan security -> request-phase policies -> the entrypoint. Gateway errors
become `{"message", "http_status_code"}` JSON bodies; anything unexpected is logged with the
transaction id and answered 500 without a stack trace.

Around the dispatcher (evgate/observability/): `NodePortRouter` sends requests that arrived on
the node port (EVGATE_NODE_BIND) to the node endpoints (/_node/health, /_node/metrics) and
never serves them on the public port; `RequestObserver` writes the access log and the request
metrics when a response ends and tracks connections for the drain. While the worker drains
(SIGTERM) a new request gets 503 with `Connection: close`, and responses of requests already
in flight close their connection too.
"""
from __future__ import annotations

import gc
import json
import logging
import time
from typing import Any

from flask import Flask, Response, g, request

from .config import Config
from .errors import GatewayError, NotFoundGatewayError
from .gateway.context import ExecutionContext
from .gateway.ids import new_id
from .gateway.runtime import GatewayRuntime
from .observability.access import RequestObserver
from .observability.node_app import NodePortRouter, create_node_app

logger = logging.getLogger(__name__)

TRANSACTION_HEADER = "X-Gravitee-Transaction-Id"
REQUEST_ID_HEADER = "X-Gravitee-Request-Id"


def error_response(error: GatewayError, transaction_id: str | None = None) -> Response:
    response = Response(json.dumps(error.body()), status=error.status,
                        mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    if transaction_id:
        response.headers[TRANSACTION_HEADER] = transaction_id
    return response


def create_app(config: Config | None = None, *, repository: Any = None,
               runtime: GatewayRuntime | None = None, start: bool = True) -> Flask:
    """Build the gateway app. `start` begins the repository sync (workers), off in unit tests."""
    config = config or Config.from_env()
    app = Flask("evgate.gateway")
    app.config["MAX_CONTENT_LENGTH"] = None  # entrypoints enforce their own limits (413)
    if runtime is None:
        if repository is None:
            from .repository import open_repository
            repository = open_repository(config.database_url)
        runtime = GatewayRuntime(config, repository)
    app.extensions["evgate.runtime"] = runtime
    app.extensions["evgate.config"] = config
    if start:
        runtime.start()
        # Worker start-up objects (Flask, SQLAlchemy, the definitions) live as long as the
        # worker: keep them out of the cyclic GC's generations, or every full collection walks
        # them all (batch ingestion allocates enough to trigger those often: -15 % CPU per
        # record in bench/ingest.py). Same trick as Instagram's gc.freeze() after fork.
        gc.freeze()

    @app.route("/", defaults={"path": ""}, methods=_METHODS, provide_automatic_options=False)
    @app.route("/<path:path>", methods=_METHODS, provide_automatic_options=False)
    # werkzeug routes WebSocket upgrades only to rules marked websocket=True (else 400 before
    # the dispatcher runs); the websocket entrypoint takes them over (issue 3).
    @app.route("/", defaults={"path": ""}, methods=["GET"], websocket=True,
               provide_automatic_options=False)
    @app.route("/<path:path>", methods=["GET"], websocket=True, provide_automatic_options=False)
    def dispatch(path: str) -> Response:
        transaction_id = request.headers.get(TRANSACTION_HEADER) or new_id()
        g.transaction_id = transaction_id
        g.started = time.monotonic()
        environ = request.environ
        environ["evgate.transaction_id"] = transaction_id
        try:
            if runtime.draining:
                raise _Stopping()
            match = runtime.router.match(request.path)
            if match is None:
                raise NotFoundGatewayError("No context-path matches the request URI.")
            api, relative = match
            g.api_id = environ["evgate.api_id"] = api.id
            entrypoint = api.select_entrypoint(request)
            api.check_qos(entrypoint)
            ctx = ExecutionContext(api=api, request=request, transaction_id=transaction_id,
                                   entrypoint_type=entrypoint.type)
            ctx.attributes["gravitee.attribute.request.relativePath"] = relative
            ctx.attributes["gravitee.attribute.api"] = api.id
            g.entrypoint = environ["evgate.entrypoint"] = entrypoint.type
            api.admit(ctx)
            api.run_request_phase(ctx)
            response = entrypoint.handle(ctx)
            response = api.run_response_phase(ctx, response)
        except GatewayError as exc:
            if exc.status >= 500 and not isinstance(exc, _Stopping):  # drain: expected
                logger.warning("%s %s -> %s: %s (tx %s)", request.method, request.path,
                               exc.status, exc.message, transaction_id)
            response = error_response(exc)
        except Exception:  # noqa: BLE001 - never a stack trace to the client
            logger.exception("unexpected error on %s %s (tx %s)", request.method, request.path,
                             transaction_id)
            response = error_response(GatewayError("Internal Server Error"))
        response.headers[TRANSACTION_HEADER] = transaction_id
        response.headers.setdefault(REQUEST_ID_HEADER, transaction_id)
        if runtime.draining:
            response.headers["Connection"] = "close"
        return response

    node_app = create_node_app(runtime)
    app.extensions["evgate.node_app"] = node_app
    app.wsgi_app = RequestObserver(  # type: ignore[method-assign]
        NodePortRouter(app.wsgi_app, node_app, _port(config.node_bind)), runtime.connections,
        access_log=config.access_log)
    return app


def _port(bind: str | None) -> int | None:
    if not bind:
        return None
    return int(bind.rpartition(":")[2])


class _Stopping(GatewayError):
    status = 503

    def __init__(self) -> None:
        super().__init__("The gateway is stopping; retry on another node.",
                         headers={"Connection": "close", "Retry-After": "1"})


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

"""create_app(): the gateway Flask app (factory; nothing happens at import), and the worker's
composition: the runtime, the dispatcher, the observers, the one SIGTERM handler.

Every request goes through one dispatcher: listener path match (longest prefix) -> entrypoint
negotiation -> plan security -> request-phase policies -> the entrypoint. Gateway errors
become `{"message", "http_status_code"}` JSON bodies; anything unexpected is logged with the
transaction id and answered 500 without a stack trace. The dispatcher lives in
evgate/gateway/wsgi_dispatch.py, which also serves it as plain WSGI without Flask's request
machinery (the fast path); Flask's catch-all route serves what needs a request context.

Around the dispatcher (evgate/observability/): `NodePortRouter` sends requests that arrived on
the node port (EVGATE_NODE_BIND) to the node endpoints (/_node/health, /_node/metrics) and
never serves them on the public port; `RequestObserver` writes the access log and the request
metrics when a response ends and tracks connections for the drain. While the worker drains
(SIGTERM) a new request gets 503 with `Connection: close`, and responses of requests already
in flight close their connection too.
"""
from __future__ import annotations

import gc
import logging
from typing import Any

from flask import Flask, Response, request

from .config import Config
from .gateway.runtime import GatewayRuntime
from .gateway.wsgi_dispatch import (METHODS, REQUEST_ID_HEADER,  # noqa: F401 - re-exported
                                    TRANSACTION_HEADER, GatewayDispatcher, GatewayWsgi,
                                    error_response)
from .observability.access import RequestObserver
from .observability.node_app import NodePortRouter, create_node_app

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None, *, repository: Any = None,
               runtime: GatewayRuntime | None = None, start: bool = True) -> Flask:
    """Build the gateway app. `start` begins the repository sync (workers), off in unit tests."""
    config = config or Config.from_env()
    app = Flask("evgate.gateway")
    app.config["MAX_CONTENT_LENGTH"] = None  # entrypoints enforce their own limits (413)
    if runtime is None:
        if repository is None:
            from .repository import open_repository
            repository = open_repository(config.database_url, secrets_key=config.secrets_key)
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

    dispatcher = GatewayDispatcher(runtime)

    @app.route("/", defaults={"path": ""}, methods=_METHODS, provide_automatic_options=False)
    @app.route("/<path:path>", methods=_METHODS, provide_automatic_options=False)
    # werkzeug routes WebSocket upgrades only to rules marked websocket=True (else 400 before
    # the dispatcher runs); the websocket entrypoint takes them over (issue 3).
    @app.route("/", defaults={"path": ""}, methods=["GET"], websocket=True,
               provide_automatic_options=False)
    @app.route("/<path:path>", methods=["GET"], websocket=True, provide_automatic_options=False)
    def dispatch(path: str) -> Response:
        # Flask serves what the fast path hands over (streams, WebSocket upgrades)
        return dispatcher.dispatch(request)

    node_app = create_node_app(runtime)
    app.extensions["evgate.node_app"] = node_app
    # the raw-WSGI fast path in front of Flask (evgate/gateway/wsgi_dispatch.py)
    gateway_wsgi = GatewayWsgi(dispatcher, app, app.wsgi_app)
    app.wsgi_app = RequestObserver(  # type: ignore[method-assign]
        NodePortRouter(gateway_wsgi, node_app, _port(config.node_bind)), runtime.connections,
        access_log=config.access_log)
    from .security.forwarded import behind_trusted_proxies
    behind_trusted_proxies(app, config.trusted_proxies)
    return app


def drain_on_sigterm(runtime: GatewayRuntime, budget: float) -> None:
    """The worker's one SIGTERM handler, chained after gunicorn's: drain the runtime (refuse
    new requests, stop webhooks, goaway to every stream, wait for in-flight requests) in a
    greenlet. Installed once per worker by gunicorn's post_worker_init."""
    import signal

    import gevent
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        # A signal handler may run on the hub: only flip flags and spawn (gunicorn's own
        # handle_exit just sets worker.alive = False).
        if callable(previous):
            previous(signum, frame)
        gevent.spawn(runtime.drain, budget)

    signal.signal(signal.SIGTERM, on_sigterm)


def _port(bind: str | None) -> int | None:
    if not bind:
        return None
    return int(bind.rpartition(":")[2])


_METHODS = METHODS

"""The node endpoints, served by each gateway worker on the node port only (EVGATE_NODE_BIND).

    GET /_node/health             readiness report (200 UP / 503 DOWN), like Gravitee's
    GET /_node/health/readiness   the same
    GET /_node/health/liveness    200 while the worker answers
    GET /_node/metrics            Prometheus text of every worker of this gunicorn master

`NodePortRouter` wraps the gateway's WSGI app: a request whose *local socket* is bound to the
node port goes to this app, everything else to the gateway. The local socket, not SERVER_PORT:
gunicorn's `gevent` worker derives SERVER_PORT from the Host header, which a client chooses.
So node paths are never served on the public port (there they are ordinary gateway paths).
"""
from __future__ import annotations

import contextlib
import json
import logging
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterable

from flask import Flask, Response

from .health import Readiness

if TYPE_CHECKING:
    from ..gateway.runtime import GatewayRuntime

logger = logging.getLogger(__name__)


def _json(payload: Any, status: int = 200) -> Response:
    response = Response(json.dumps(payload), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def create_node_app(runtime: "GatewayRuntime") -> Flask:
    app = Flask("evgate.node")
    readiness = Readiness(runtime)
    app.extensions["evgate.readiness"] = readiness

    @app.get("/_node/health")
    @app.get("/_node/health/readiness")
    def health() -> Response:
        report = readiness.check()
        return _json(report, 200 if report["status"] == "UP" else 503)

    @app.get("/_node/health/liveness")
    def liveness() -> Response:
        return _json({"status": "UP"})

    @app.get("/_node/metrics")
    def metrics() -> Response:
        from . import metrics as prom
        body, content_type = prom.render()
        return Response(body, status=200, content_type=content_type)

    @app.errorhandler(404)
    def not_found(_exc: Any) -> Response:
        return _json({"message": "Not found: the node port serves /_node/health, "
                                 "/_node/health/liveness, /_node/health/readiness and "
                                 "/_node/metrics.", "http_status_code": 404}, 404)

    @app.errorhandler(405)
    def not_allowed(_exc: Any) -> Response:
        return _json({"message": "Method not allowed.", "http_status_code": 405}, 405)

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Response:
        logger.exception("node endpoint failed")
        return _json({"message": "Internal Server Error", "http_status_code": 500}, 500)

    return app


def local_port(environ: dict[str, Any]) -> int | None:
    """The port of the socket the request arrived on (pywsgi: gunicorn.sock, gevent worker:
    gunicorn.socket); None outside gunicorn (test clients)."""
    sock = environ.get("gunicorn.sock") or environ.get("gunicorn.socket")
    if sock is None:
        return None
    try:
        return _local_ports[sock]   # a keep-alive connection asks once, not per request
    except (KeyError, TypeError):
        pass
    try:
        port = sock.getsockname()[1]
    except (OSError, IndexError, TypeError):
        return None
    with contextlib.suppress(TypeError):   # not weak-referenceable: asked again next time
        _local_ports[sock] = port
    return port


#: client socket -> local port, forgotten with the socket
_local_ports: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


class NodePortRouter:
    """WSGI middleware: node-port requests to the node app, the rest to the gateway."""

    def __init__(self, gateway: Callable, node: Callable, node_port: int | None):
        self.gateway = gateway
        self.node = node
        self.node_port = node_port

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if self.node_port is not None and local_port(environ) == self.node_port:
            environ["evgate.node"] = True
            return self.node(environ, start_response)
        return self.gateway(environ, start_response)

"""The gateway's request dispatcher, and the raw-WSGI fast path that serves it without Flask.

Every gateway request goes through `GatewayDispatcher.dispatch`: listener path match (longest
prefix) -> CORS (evgate/gateway/cors.py: preflights answered, WebSocket origins checked) ->
entrypoint negotiation -> plan security -> request-phase policies -> the entrypoint
-> response-phase policies. Gateway errors become `{"message", "http_status_code"}` JSON
bodies; anything unexpected is logged with the transaction id and answered 500 without a
stack trace. Every response carries X-Gravitee-Transaction-Id / X-Gravitee-Request-Id.

Why a fast path: Flask's per-request machinery (URL map bind + match, request context push and
pop, signals, `process_response`, `finalize_request`) cost about as much worker CPU as the
whole bare route the ingestion benchmark compares against, and the gateway uses none of it
(one catch-all rule). `GatewayWsgi` is a plain WSGI callable that builds the (lazy) request
object itself and calls the same `dispatch`; it enters Flask only for what needs Flask's
request context: entrypoints whose class says `raw_wsgi = False` (streams use
`stream_with_context`, WebSocket upgrades go through flask-sock's `websocket=True` rules) and
methods the catch-all rule does not take (Flask answers those 405). The fallback is decided
right after entrypoint negotiation, before plan security or any policy ran, so nothing runs
twice. The fast path pushes no app context: the log records' api_id / entrypoint /
transaction_id go to a `RequestScope` (evgate/logs.py), which the log filter reads as it reads
`flask.g` on Flask's path (pushing and popping an app context per request was ~3 % of an
ingestion request's CPU, docs/benchmarks.md).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable

from flask import Response, g
from werkzeug.datastructures import Headers

from ..errors import ForbiddenError, GatewayError, NotFoundGatewayError
from ..core.context import ExecutionContext
from .responses import REQUEST_ID_HEADER, TRANSACTION_HEADER, error_response  # noqa: F401
from .cors import ORIGIN_NOT_ALLOWED, is_preflight, is_websocket_upgrade
from ..core.ids import new_id
from ..logs import RequestScope

REQUEST_ID_HEADER_LOWER = REQUEST_ID_HEADER.lower()

if TYPE_CHECKING:
    from flask import Flask

    from .runtime import GatewayRuntime

logger = logging.getLogger(__name__)

#: the methods of the gateway's catch-all Flask rules (others: Flask's own 405)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_METHODS = frozenset(METHODS)
_TRANSACTION_ENVIRON = "HTTP_" + TRANSACTION_HEADER.upper().replace("-", "_")


class Stopping(GatewayError):
    """503 for a request that arrives while the worker drains (SIGTERM)."""

    status = 503

    def __init__(self) -> None:
        super().__init__("The gateway is stopping; retry on another node.",
                         headers={"Connection": "close", "Retry-After": "1"})


class GatewayDispatcher:
    """One per gateway app; `dispatch(request)` answers one request (never raises)."""

    def __init__(self, runtime: "GatewayRuntime"):
        self.runtime = runtime

    def dispatch(self, request: Any, *, raw: bool = False,
                 scope: RequestScope | None = None) -> Response | None:
        """The response to `request`. With `raw` (no Flask request context), None when the
        selected entrypoint needs Flask's: the caller then hands the request to Flask.
        `scope`: where the log records' context goes (the fast path's; else `flask.g`)."""
        runtime = self.runtime
        environ = request.environ
        context: Any = g if scope is None else scope
        # set by the fast path when it handed this request over: one id per request
        transaction_id = (environ.get("evgate.transaction_id")
                          or environ.get(_TRANSACTION_ENVIRON) or new_id())
        context.transaction_id = transaction_id
        environ["evgate.transaction_id"] = transaction_id
        cors = None
        preflight = False
        try:
            if runtime.draining:
                raise Stopping()
            match = runtime.router.match(request.path)
            if match is None:
                raise NotFoundGatewayError("No context-path matches the request URI.")
            api, relative = match
            context.api_id = environ["evgate.api_id"] = api.id
            cors = api.cors_for(request.path)
            if cors is not None:
                preflight = is_preflight(request)
                if preflight and not cors.run_policies:   # no plan, no flow (Fetch standard)
                    response = cors.preflight_response(request)
                    return self._finish(response, transaction_id)
                if is_websocket_upgrade(request) and "Origin" in request.headers \
                        and not cors.allows(request.headers.get("Origin")):
                    raise ForbiddenError("The WebSocket upgrade's Origin is not allowed by the "
                                         "listener's CORS configuration.",
                                         key=ORIGIN_NOT_ALLOWED)
            if preflight:   # runPolicies: plans and request/response flows run around it
                ctx = ExecutionContext(api=api, request=request, transaction_id=transaction_id,
                                       entrypoint_type="cors-preflight")
                ctx.attributes["gravitee.attribute.request.relativePath"] = relative
                ctx.attributes["gravitee.attribute.api"] = api.id
                api.admit(ctx)
                api.run_request_phase(ctx)
                response = api.run_response_phase(ctx, cors.preflight_response(request))
                return self._finish(response, transaction_id)
            entrypoint = api.select_entrypoint(request)
            if raw and not entrypoint.raw_wsgi:
                return None
            api.check_qos(entrypoint)
            ctx = ExecutionContext(api=api, request=request, transaction_id=transaction_id,
                                   entrypoint_type=entrypoint.type)
            ctx.attributes["gravitee.attribute.request.relativePath"] = relative
            ctx.attributes["gravitee.attribute.api"] = api.id
            context.entrypoint = environ["evgate.entrypoint"] = entrypoint.type
            api.admit(ctx)
            api.run_request_phase(ctx)
            response = entrypoint.handle(ctx)
            response = api.run_response_phase(ctx, response)
        except GatewayError as exc:
            if exc.status >= 500 and not isinstance(exc, Stopping):  # drain: expected
                logger.warning("%s %s -> %s: %s (tx %s)", request.method, request.path,
                               exc.status, exc.message, transaction_id)
            response = error_response(exc)
        except Exception:  # noqa: BLE001 - never a stack trace to the client
            logger.exception("unexpected error on %s %s (tx %s)", request.method, request.path,
                             transaction_id)
            response = error_response(GatewayError("Internal Server Error"))
        if cors is not None and not preflight:
            cors.decorate(request, response)
        return self._finish(response, transaction_id)

    def _finish(self, response: Response, transaction_id: str) -> Response:
        headers = response.headers
        headers[TRANSACTION_HEADER] = transaction_id
        if REQUEST_ID_HEADER_LOWER not in header_names(headers):
            headers[REQUEST_ID_HEADER] = transaction_id
        if self.runtime.draining:
            response.headers["Connection"] = "close"
        return response


class GatewayWsgi:
    """The gateway as a plain WSGI callable; `flask_wsgi` (the Flask app's own `wsgi_app`)
    serves what needs Flask's request context (see the module docstring)."""

    def __init__(self, dispatcher: GatewayDispatcher, app: "Flask",
                 flask_wsgi: Callable[[dict, Callable], Iterable[bytes]]):
        self.dispatcher = dispatcher
        self.flask_wsgi = flask_wsgi
        self.request_class = app.request_class

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in _METHODS or "HTTP_UPGRADE" in environ:
            return self.flask_wsgi(environ, start_response)
        scope = RequestScope()
        token = scope.enter()
        try:
            response = self.dispatcher.dispatch(self.request_class(environ), raw=True,
                                                scope=scope)
        finally:
            RequestScope.leave(token)
        if response is None:
            return self.flask_wsgi(environ, start_response)
        return _respond(response, environ, start_response)


_NO_BODY_STATUSES = frozenset({204, 304})


def _respond(response: Response, environ: dict[str, Any],
             start_response: Callable) -> Iterable[bytes]:
    """`response(environ, start_response)`, without werkzeug's per-response fix-ups when none
    applies: a buffered bytes body whose Content-Length is set, no Location header to make
    absolute, not HEAD, no close callbacks (werkzeug copies the headers, scans them and wraps
    the body in a ClosingIterator: ~5 % of a worker's CPU per 202, bench/ingest.py)."""
    body = response.response
    headers = response.headers
    if (type(response) is Response and type(body) is list and len(body) == 1
            and type(body[0]) is bytes
            and not response.direct_passthrough and not response._on_close
            and 200 <= response.status_code < 300
            and response.status_code not in _NO_BODY_STATUSES
            and environ.get("REQUEST_METHOD") != "HEAD"):
        names = header_names(headers)
        if "content-length" in names and "location" not in names \
                and "content-location" not in names:
            start_response(response.status, headers.to_wsgi_list())
            return body
    return response(environ, start_response)


def header_names(headers: Headers) -> set[str]:
    """The lower-cased names of `headers`. werkzeug's `name in headers` (and `setdefault`,
    `get`) raises and catches a BadRequestKeyError for every absent name: ~1.3 us each, and
    a 202 asked for three absent names (docs/benchmarks.md, issue 11 ninth pass)."""
    return {name.lower() for name, _ in headers}

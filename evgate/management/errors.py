"""Errors -> JSON bodies in the Gravitee mAPI style. The 3.20 paths answer `{"message",
"http_status", "technicalCode"?, "parameters"?, "errors"?}` (`errors` lists definition problems
by JSON path); the mAPI v2 paths (`/management/v2/...`) answer 4.x's `{"httpStatus", "message",
"technicalCode", "parameters", "details": [{"message", "location"}]}`, `location` being the
JSON path of each problem. Nothing unexpected reaches a client as a stack trace: it is logged
and answered 500."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, has_request_context, request
from werkzeug.exceptions import HTTPException

from ..errors import ConflictError, DefinitionError, GatewayError, NotFoundError

logger = logging.getLogger(__name__)


class UnsupportedMediaTypeError(GatewayError):
    status = 415


V2_PREFIX = "/management/v2/"


def _v2_body(status: int, message: str, key: str | None, extra: dict[str, Any]
             ) -> dict[str, Any]:
    problems = extra.get("errors")
    if problems:
        details = [{"message": p["message"], "location": p["path"]} for p in problems]
    elif message.startswith("$"):
        # service messages name the place first: "$.planId: ..." (several joined by "; ")
        details = [{"message": part.partition(": ")[2] or part,
                    "location": part.partition(": ")[0]} for part in message.split("; ")]
    else:
        details = []
    if "/subscriptions" in request.path:
        # the services name a subscription's configuration as stored (3.20's flat
        # `configuration`); a v2 client sent `consumerConfiguration.entrypointConfiguration`
        from ..definition.v4x import consumer_configuration_location_v2 as where
        details = [{"message": d["message"], "location": where(d["location"])}
                   for d in details]
        message = "; ".join(where(part.partition(": ")[0]) + part[len(part.partition(": ")[0]):]
                            if part.startswith("$") else part for part in message.split("; "))
    parameters = extra.get("parameters")
    return {"httpStatus": status, "message": message,
            "technicalCode": key or f"http.{status}",
            "parameters": {k: str(v) for k, v in parameters.items()}
            if isinstance(parameters, dict) else {},
            "details": details}


def error_body(status: int, message: str, key: str | None = None,
               **extra: Any) -> dict[str, Any]:
    if has_request_context() and request.path.startswith(V2_PREFIX):
        return _v2_body(status, message, key, extra)
    body: dict[str, Any] = {"message": message, "http_status": status}
    if key:
        body["technicalCode"] = key
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def json_error(status: int, message: str, key: str | None = None,
               headers: dict[str, str] | None = None, **extra: Any) -> Response:
    response = Response(json.dumps(error_body(status, message, key, **extra)), status=status,
                        mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(DefinitionError)
    def _definition(exc: DefinitionError) -> Response:
        return json_error(400, str(exc), "api.definition.invalid", errors=exc.problems)

    @app.errorhandler(NotFoundError)
    def _not_found(exc: NotFoundError) -> Response:
        key = f"{exc.kind.lower()}.notFound"
        return json_error(404, str(exc), key, parameters={exc.kind.lower(): exc.ident})

    @app.errorhandler(ConflictError)
    def _conflict(exc: ConflictError) -> Response:
        return json_error(exc.status, str(exc), exc.key)

    @app.errorhandler(GatewayError)
    def _gateway(exc: GatewayError) -> Response:
        return json_error(exc.status, exc.message, exc.key, headers=exc.headers,
                          parameters=exc.details)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        headers = {}
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        message = {404: f"no such resource: {request.method} {request.path}",
                   405: f"method {request.method} is not allowed on {request.path}"}.get(
                       exc.code or 500, exc.description or exc.name)
        return json_error(exc.code or 500, message, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return json_error(500, "Internal Server Error")

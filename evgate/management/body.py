"""Reading request bodies the way the Postman collection sends them.

Create/update operations need a JSON object: empty -> 400, not JSON content type -> 415,
malformed -> 400. Action operations (start, publish, status, ...) ignore whatever body comes
along (the collection sends empty, stray, even whole API definitions there). Every body, read
or ignored, is bounded (EVGATE_MANAGEMENT_MAX_BODY_BYTES -> 413) and JSON is parsed by
evgate.jsoninput (depth limit, UTF-8, no lone surrogates, no NaN -> 400)."""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, current_app, g, request

from .. import jsoninput
from ..errors import BadRequestError, PayloadTooLargeError
from .errors import UnsupportedMediaTypeError

#: C0 controls and DEL: never part of an id or a query value; NUL is refused by PostgreSQL
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def init_app(app: Flask) -> None:
    """Before authentication: a declared body over the limit is 413 on every route (also
    those that ignore their body), and path/query values with control characters are 400."""
    limit = app.extensions["evgate.config"].management_max_body_bytes

    @app.before_request
    def _check_request() -> None:
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes (Content-Length "
                                       f"{request.content_length})", key="body.tooLarge")
        for where, values in (("path parameter", (request.view_args or {}).items()),
                              ("query parameter", request.args.items(multi=True))):
            for name, value in values:
                if isinstance(value, str) and _CONTROL.search(value):
                    raise BadRequestError(f"{where} {name}: control characters are not "
                                          "allowed", key="request.invalid")


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def raw_body() -> bytes:
    """The request body, read once and at most EVGATE_MANAGEMENT_MAX_BODY_BYTES (413)."""
    if "evgate_body" not in g:
        config = current_app.extensions["evgate.config"]
        g.evgate_body = jsoninput.read_body(request.stream, request.content_length,
                                            config.management_max_body_bytes)
    return g.evgate_body


def _loads(raw: bytes) -> Any:
    config = current_app.extensions["evgate.config"]
    return jsoninput.loads(raw, max_depth_limit=config.management_max_json_depth)


def json_body(required: bool = True) -> Any:
    raw = raw_body()
    if not raw.strip():
        if required:
            raise BadRequestError("a JSON body is required", key="body.missing")
        return None
    if not _is_json(request.mimetype):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, not {request.mimetype or 'missing'!r}",
            key="body.contentType")
    return _loads(raw)


def lenient_json() -> Any:
    """The body as JSON when it is some, else None (for optional action bodies; a body
    over the size limit is still 413)."""
    raw = raw_body()
    if not raw.strip():
        return None
    try:
        return _loads(raw)
    except BadRequestError:
        return None


def optional_string(body: Any, field: str, max_length: int = 255) -> str | None:
    """`body[field]` when it is a string (None when absent or body is not an object);
    400 naming the field for any other type or a string that long."""
    value = body.get(field) if isinstance(body, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequestError(f"$.{field}: must be a string of at most {max_length} "
                              "characters", key="body.invalid")
    return value


def json_response(data: Any, status: int = 200):
    from flask import Response
    return Response(json.dumps(data, default=str), status=status, mimetype="application/json")

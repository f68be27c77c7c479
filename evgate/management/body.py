"""Reading request bodies the way the Postman collection sends them.

Create/update operations need a JSON object: empty -> 400, not JSON content type -> 415,
malformed -> 400. Action operations (start, publish, status, ...) ignore whatever body comes
along (the collection sends empty, stray, even whole API definitions there). Every body, read
or ignored, is bounded (EVGATE_MANAGEMENT_MAX_BODY_BYTES -> 413) and JSON is parsed by
evgate.jsoninput (depth limit, UTF-8, no lone surrogates, no NaN -> 400)."""
from __future__ import annotations

import json
from typing import Any

from flask import current_app, g, request

from .. import jsoninput
from ..errors import BadRequestError
from .errors import UnsupportedMediaTypeError


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


def json_response(data: Any, status: int = 200):
    from flask import Response
    return Response(json.dumps(data, default=str), status=status, mimetype="application/json")

"""Reading request bodies the way the Postman collection sends them.

Create/update operations need a JSON object: empty -> 400, not JSON content type -> 415,
malformed -> 400. Action operations (start, publish, status, ...) ignore whatever body comes
along (the collection sends empty, stray, even whole API definitions there)."""
from __future__ import annotations

import json
from typing import Any

from flask import request

from ..errors import BadRequestError
from .errors import UnsupportedMediaTypeError


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def json_body(required: bool = True) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise BadRequestError("a JSON body is required", key="body.missing")
        return None
    if not _is_json(request.mimetype):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, not {request.mimetype or 'missing'!r}",
            key="body.contentType")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"malformed JSON body: {exc}", key="body.malformed") from None


def lenient_json() -> Any:
    """The body as JSON when it is some, else None (for optional action bodies)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def json_response(data: Any, status: int = 200):
    from flask import Response
    return Response(json.dumps(data, default=str), status=status, mimetype="application/json")

"""The gateway's error response (a GatewayError as JSON) and its correlation headers: shared
by the dispatcher and the CORS preflight without importing each other."""
from __future__ import annotations

import json

from flask import Response

from ..errors import GatewayError

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

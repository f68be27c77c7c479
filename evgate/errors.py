"""One exception tree for evgate; every gateway error knows its HTTP status.

    EvgateError                      base; never shown to clients as a stack trace
    ├── ConfigError                  a setting has a value it cannot take
    ├── DefinitionError              an API definition is invalid (carries every problem by path)
    ├── NotFoundError                an entity id that does not exist (404)
    ├── ConflictError                a request that conflicts with stored state (400)
    │   └── DuplicateError           an id (or unique value) that is already taken (409)
    └── GatewayError                 something a gateway client gets as a JSON error body
        ├── BadRequestError          400
        ├── UnauthorizedError        401
        ├── NotAcceptableError       406
        ├── MethodNotAllowedError    405
        ├── PayloadTooLargeError     413
        ├── BadGatewayError          502 (the backend refused: not worth retrying as is)
        └── BackendUnavailableError  503 + Retry-After (Kafka unreachable, produce not acked)

Errors carry a `retriable` attribute (aiokafka's habit) instead of callers keeping lists of
exception classes: a retriable error means "the same request may succeed later".
"""
from __future__ import annotations

from typing import Any


class EvgateError(Exception):
    """Base of every error evgate raises on purpose."""

    retriable = False


class ConfigError(EvgateError):
    """A setting has a value it cannot take."""


class DefinitionError(EvgateError):
    """An API definition is invalid; `problems` lists each one as {"path", "message"}."""

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid API definition: {summary}{more}")


class NotFoundError(EvgateError):
    """An entity that does not exist."""

    def __init__(self, kind: str, ident: str):
        self.kind, self.ident = kind, ident
        super().__init__(f"{kind} [{ident}] can not be found")


class ConflictError(EvgateError):
    """A request that conflicts with what is stored (duplicate path, wrong state, ...)."""

    status = 400

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(message)


class DuplicateError(ConflictError):
    """An id or unique value that is already taken (a second API or plan with one id, a
    custom API key in use, a unique constraint of the repository): 409."""

    status = 409


class GatewayError(EvgateError):
    """An error a gateway client receives as `{"message", "http_status_code"}`."""

    status = 500
    key: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None,
                 key: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        if key:
            self.key = key
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "http_status_code": self.status}
        if self.key:
            body["key"] = self.key
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequestError(GatewayError):
    status = 400


class UnauthorizedError(GatewayError):
    status = 401


class ForbiddenError(GatewayError):
    status = 403


class NotFoundGatewayError(GatewayError):
    status = 404


class MethodNotAllowedError(GatewayError):
    status = 405


class NotAcceptableError(GatewayError):
    status = 406


class PayloadTooLargeError(GatewayError):
    status = 413


class TooManyRequestsError(GatewayError):
    status = 429
    retriable = True


class BadGatewayError(GatewayError):
    status = 502


class BackendUnavailableError(GatewayError):
    """Kafka (or another backend) did not take the message: the client may retry later."""

    status = 503
    retriable = True

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any):
        headers = {"Retry-After": str(retry_after), **kwargs.pop("headers", {})}
        super().__init__(message, headers=headers, **kwargs)

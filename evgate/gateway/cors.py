"""CORS on HTTP listeners (Gravitee 4.x's listener `cors` block), compiled once per deploy.

- Preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): answered by the
  gateway without plans or flows (unless `runPolicies`), per the Fetch standard: the origin,
  the requested method and every requested header must be allowed, else 400
  `CORS_PREFLIGHT_FAILED` without any Access-Control-Allow-* header (the browser then refuses).
- Actual responses (http-post 202s and errors, http-get pages, SSE streams): an allowed origin
  gets `Access-Control-Allow-Origin` (the origin, or `*` when `allowOrigin` has `*` and
  credentials are off), `Access-Control-Allow-Credentials`, `Access-Control-Expose-Headers`;
  another origin gets none. `Vary: Origin` whenever the answer depends on the origin.
- WebSocket upgrades: browsers do not apply CORS to WebSocket, so a page on any site could open
  one with the user's cookies (cross-site WebSocket hijacking). With CORS enabled an upgrade
  whose `Origin` is not allowed is refused with 403; clients that send no `Origin` (non-browser
  tools) are not affected.

`allowOrigin` entries: `*`; an exact origin (`scheme://host[:port]` or `null`, compared
case-insensitively); anything else is a regular expression that must match the whole origin.
Unlike Gravitee, an exact origin is not also read as a regular expression (its dots would match
any character: `https://app.example.com` would let `https://appXexample.com` in). Regular
expressions are compiled by the expression language's `compile_regex` (evgate/el/regex.py:
RE2, linear-time; length and syntax checked, constructs RE2 lacks refused) at validation and
at deploy time, never per request.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from flask import Response

from ..el.errors import ExpressionEvaluationError
from ..errors import BadRequestError
from .responses import error_response
from ..definition.cors import EXACT_ORIGIN as _EXACT_ORIGIN, TOKEN as _TOKEN
from ..el.functions import SafeRegex, compile_regex

if TYPE_CHECKING:
    from ..definition.model import Cors

#: a longer Origin header is never allowed (browsers send scheme://host:port)
MAX_ORIGIN_LENGTH = 1024
_SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})

PREFLIGHT_FAILED = "CORS_PREFLIGHT_FAILED"
ORIGIN_NOT_ALLOWED = "CORS_ORIGIN_NOT_ALLOWED"


class CorsPolicy:
    """One listener's compiled `cors` block (only built when `enabled`)."""

    __slots__ = ("any_origin", "exact", "patterns", "credentials", "wildcard", "methods",
                 "any_method", "headers", "any_header", "expose", "max_age", "run_policies",
                 "private_network")

    def __init__(self, cors: "Cors"):
        self.any_origin = "*" in cors.allowOrigin
        self.exact = frozenset(o.lower() for o in cors.allowOrigin
                               if o != "*" and _EXACT_ORIGIN.fullmatch(o))
        self.patterns: tuple[SafeRegex, ...] = tuple(
            compile_regex(o) for o in cors.allowOrigin
            if o != "*" and o.strip() and not _EXACT_ORIGIN.fullmatch(o))
        self.credentials = cors.allowCredentials
        #: the same answer for every origin: `Access-Control-Allow-Origin: *`, no Vary
        self.wildcard = self.any_origin and not self.credentials
        self.methods = [m.upper() for m in cors.allowMethods if m != "*"]
        self.any_method = "*" in cors.allowMethods
        self.headers = frozenset(h.lower() for h in cors.allowHeaders if h != "*")
        self.any_header = "*" in cors.allowHeaders
        self.expose = ", ".join(cors.exposeHeaders)
        self.max_age = cors.maxAge
        self.run_policies = cors.runPolicies
        self.private_network = cors.allowPrivateNetwork

    def allows(self, origin: str | None) -> bool:
        if not origin or len(origin) > MAX_ORIGIN_LENGTH:
            return False
        if self.any_origin or origin.lower() in self.exact:
            return True
        for pattern in self.patterns:
            try:
                if pattern.fullmatch(origin, None):
                    return True
            except ExpressionEvaluationError:    # too costly for this origin: not allowed
                continue
        return False

    # -- actual responses --------------------------------------------------------------------
    def actual_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """The CORS headers of a (non-preflight) response to a request from `origin`."""
        if self.wildcard:
            headers = [("Access-Control-Allow-Origin", "*")]
        elif self.allows(origin):
            headers = [("Access-Control-Allow-Origin", origin or "")]
            if self.credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
        else:
            return []
        if self.expose:
            headers.append(("Access-Control-Expose-Headers", self.expose))
        return headers

    def decorate(self, request: Any, response: Any) -> None:
        headers = getattr(response, "headers", None)
        if headers is None:
            return
        for name, value in self.actual_headers(request.headers.get("Origin")):
            headers[name] = value
        if not self.wildcard:
            _vary(headers, ("Origin",))

    # -- preflight ---------------------------------------------------------------------------
    def preflight_headers(self, origin: str | None, method: str,
                          requested_headers: str | None,
                          private_network: bool = False) -> tuple[list[tuple[str, str]], str]:
        """(headers, "") for an allowed preflight, ([], reason) for a refused one."""
        if not self.allows(origin):
            return [], f"origin {_short(origin)} is not allowed"
        method = method.strip()
        if not _TOKEN.fullmatch(method):
            return [], "Access-Control-Request-Method is not a method name"
        if not (self.any_method or method.upper() in self.methods
                or method in _SAFELISTED_METHODS):
            return [], f"method {_short(method)} is not allowed"
        names = [n.strip() for n in (requested_headers or "").split(",") if n.strip()]
        for name in names:
            if not _TOKEN.fullmatch(name):
                return [], "Access-Control-Request-Headers is not a list of header names"
            if not (self.any_header or name.lower() in self.headers):
                return [], f"header {_short(name)} is not allowed"
        headers = [("Access-Control-Allow-Origin", "*" if self.wildcard else origin or "")]
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        if self.methods and not self.any_method:
            headers.append(("Access-Control-Allow-Methods", ", ".join(self.methods)))
        else:
            headers.append(("Access-Control-Allow-Methods", method))
        if names:   # echoed: valid with and without credentials (a '*' is not, with them)
            headers.append(("Access-Control-Allow-Headers", ", ".join(names)))
        if self.max_age >= 0:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        if private_network and self.private_network:
            headers.append(("Access-Control-Allow-Private-Network", "true"))
        return headers, ""

    def preflight_response(self, request: Any) -> Response:
        request_headers = request.headers
        headers, reason = self.preflight_headers(
            request_headers.get("Origin"), request_headers.get("Access-Control-Request-Method", ""),
            request_headers.get("Access-Control-Request-Headers"),
            request_headers.get("Access-Control-Request-Private-Network", "").lower() == "true")
        if reason:
            response = error_response(BadRequestError(f"CORS preflight refused: {reason}",
                                                      key=PREFLIGHT_FAILED))
        else:
            response = Response(b"", status=200)
            for name, value in headers:
                response.headers[name] = value
        vary = ["Access-Control-Request-Method", "Access-Control-Request-Headers"]
        _vary(response.headers, vary if self.wildcard else ["Origin"] + vary)
        return response


def is_preflight(request: Any) -> bool:
    return (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers)


def is_websocket_upgrade(request: Any) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _vary(headers: Any, names: Iterable[str]) -> None:
    present = [v.strip() for v in headers.get("Vary", "").split(",") if v.strip()]
    lowered = {v.lower() for v in present}
    added = [n for n in names if n.lower() not in lowered]
    if added:
        headers["Vary"] = ", ".join(present + added)


def _short(value: str | None) -> str:
    return repr((value or "")[:100])

"""HTTP Basic authentication and roles for the management and portal APIs.

- ADMIN: every operation.
- USER: read-only on the management API (GET) and the consumer-side portal API, limited
  by the services to what it owns (evgate/services/principal.py: 404 for the rest).
- No or wrong credentials: 401 with `WWW-Authenticate: Basic`; a USER writing: 403.
- Too many failed logins from the client's address or for the user name: 429 + Retry-After,
  without checking the password; too many checks already waiting: 503 + Retry-After
  (evgate/security/login.py). The address is `remote_addr`: the TCP peer, or behind the
  proxies of EVGATE_TRUSTED_PROXIES the client they forwarded (evgate/security/forwarded.py).
Passwords are never logged; failed logins are logged with the user name only.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from flask import Flask, Response, g, request

from .errors import json_error

logger = logging.getLogger(__name__)

PUBLIC = "public"      # no credentials (the OpenAPI document)
PORTAL = "portal"      # any authenticated user
ADMIN = "admin"        # ADMIN only, whatever the method
_REALM = 'Basic realm="evgate management", charset="UTF-8"'


def access(level: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a view's access level (default: GET for any user, other methods ADMIN)."""
    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view.evgate_access = level  # type: ignore[attr-defined]
        return view
    return mark


def init_app(app: Flask, users: Any) -> None:
    config = app.extensions.get("evgate.config")
    if config is not None:
        from ..security.login import LoginGuard
        users.guard = LoginGuard.from_config(config)

    @app.before_request
    def _authenticate() -> Response | None:
        if request.url_rule is None:  # unknown path: the 404/405 handlers answer
            return None
        view = app.view_functions.get(request.endpoint or "")
        level = getattr(view, "evgate_access", None)
        if level == PUBLIC or request.blueprint == "console":
            return None  # the console signs in with its own form and session
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username:
            return json_error(401, "authentication required (HTTP Basic)", "auth.required",
                              headers={"WWW-Authenticate": _REALM})
        user = users.authenticate(auth.username, auth.password or "",
                                  client=request.remote_addr)
        if user is None:
            logger.info("refused management login for user %r from %s", auth.username,
                        request.remote_addr)
            return json_error(401, "wrong user name or password", "auth.invalid",
                              headers={"WWW-Authenticate": _REALM})
        g.user = user
        if "ADMIN" in user["roles"]:
            return None
        allowed = (level == PORTAL or
                   (level is None and request.method in ("GET", "HEAD")))
        if not allowed:
            return json_error(403, f"user {user['username']} may not {request.method} "
                                   f"{request.path} (ADMIN role required)", "auth.forbidden")
        return None

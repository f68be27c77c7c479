"""The console's blueprint, session interface, CSRF guard and signed-in user (the package
docstring says why each is so)."""
from __future__ import annotations

import hmac
import logging
import secrets
import time
from typing import Any

from flask import (Blueprint, Flask, Response, abort, current_app, g, redirect, request,
                   session, url_for)
from flask.sessions import SecureCookieSessionInterface

logger = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

#: Views reachable without a session.
_OPEN = {"console.login", "console.static"}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_UPLOAD = 8 * 1024 * 1024  # bytes of one console request (a definition file): 413 past it


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, Secure whenever the request itself came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


@bp.app_template_global()
def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


@bp.app_template_global()
def csrf_field() -> Any:
    from markupsafe import Markup, escape
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">')


@bp.before_request
def _guard() -> Response | None:
    """CSRF on every POST, then the session (or a redirect to the sign-in form)."""
    request.max_content_length = MAX_UPLOAD  # an uploaded definition, not the REST API's limit
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            logger.info("console: refused %s %s from %s: missing or wrong CSRF token",
                        request.method, request.path, request.remote_addr)
            abort(400, description="missing or wrong CSRF token: reload the page and retry")
    if request.endpoint in _OPEN:
        return None
    user = current_user()
    if user is None:
        if request.method == "GET":
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        abort(401, description="sign in first")
    g.user = user
    if request.method not in ("GET", "HEAD") and request.endpoint != "console.logout" \
            and "ADMIN" not in user["roles"]:
        abort(403, description=f"user {user['username']} may not change anything "
                               "(ADMIN role required)")
    return None


def current_user() -> dict[str, Any] | None:
    """The signed-in user with its current roles, or None (no, expired or stale session)."""
    username = session.get("user")
    signed_in = session.get("at")
    if not isinstance(username, str) or not isinstance(signed_in, (int, float)):
        return None
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if time.time() - signed_in > lifetime:
        session.clear()
        return None
    from ...errors import NotFoundError
    try:
        return current_app.extensions["evgate.services"].users.get(username)
    except NotFoundError:
        session.clear()
        return None


def sign_in(user: dict[str, Any]) -> None:
    """A fresh session (no fixation: whatever was in the cookie is dropped, new CSRF token)."""
    session.clear()
    session.permanent = True
    session["user"] = user["username"]
    session["at"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def is_admin() -> bool:
    user = g.get("user")
    return bool(user and "ADMIN" in user["roles"])

"""The web console at `/console/`: server-rendered pages over the same services as the REST API.

Sign-in and sessions (docs/console.md):
- The form checks the password with `UserService.authenticate`, so the console gets the same
  scrypt verification off the hub, the same failed-login throttling per address and per user
  name (429) and the same dummy-hash timing as the Basic-auth API.
- The session is Flask's signed cookie, signed with a key derived from the secrets key
  (`Keyring.derive`): no new secret to manage, the same on every node sharing the key.
  It holds the user name, the sign-in time and a CSRF token; roles are re-read from the
  repository on every request (a deleted user or a demoted ADMIN takes effect at once).
  Cookie: HttpOnly, SameSite=Strict, Secure over TLS (or EVGATE_CONSOLE_SECURE_COOKIE);
  lifetime EVGATE_CONSOLE_SESSION_MINUTES, checked on the server from the signed sign-in
  time, so a copied cookie does not outlive it.
- CSRF: a synchronizer token per session (random, kept in the signed session), required in
  the form field `csrf_token` or the `X-CSRF-Token` header of every POST, the sign-in form
  included; compared in constant time; missing or wrong is 400. A small check of our own
  rather than Flask-WTF's CSRFProtect, which protects the whole app and would demand tokens
  from the Basic-auth REST clients too; this one is scoped to the console blueprint.
- Roles: like the REST API, a USER reads (what the services let it see: 404 for others'
  applications and subscriptions) and every state-changing console POST is ADMIN only (403).
  Every change goes through evgate.services, exactly as the REST API's.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import time
from datetime import timedelta
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


def init_app(app: Flask, config: Any, repository: Any) -> None:
    """Attach the console to the management app (called by create_management_app)."""
    app.secret_key = repository.keyring.derive("console-session")
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="evgate_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(config.console_secure_cookie),
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=config.console_session_minutes),
    )
    from . import charts, live, views  # noqa: F401 - they register their routes on bp
    app.register_blueprint(bp)
    live.init_app(app, config)


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

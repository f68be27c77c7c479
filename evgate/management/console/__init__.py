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

from datetime import timedelta
from typing import Any

from flask import Flask

from .blueprint import ConsoleSessionInterface, bp


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

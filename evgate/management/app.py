"""create_management_app(): the management REST API as its own Flask app (port 8083).

Nothing happens at import. Building the app makes sure the `admin` user can log in
(EVGATE_ADMIN_PASSWORD, or a generated password shown once on stderr), registers one blueprint
per entity and the JSON error handlers, and tolerates trailing slashes on every path (the
Postman collection posts to `v4/apis/` and `v4/apis/{id}/?action=start`).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response

from ..config import Config
from . import auth, body, errors
from .body import json_response
from .resources import Services

logger = logging.getLogger(__name__)


class TolerateTrailingSlash:
    """WSGI middleware: `/a/b/` is routed as `/a/b` (Gravitee accepts both)."""

    def __init__(self, app: Any):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.app(environ, start_response)


def create_management_app(config: Config | None = None, *, repository: Any = None) -> Flask:
    config = config or Config.from_env()
    if repository is None:
        from ..repository import open_repository
        repository = open_repository(config.database_url, secrets_key=config.secrets_key)
    from ..entrypoints.webhook.ssrf import SsrfPolicy
    services = Services.for_repository(repository, ssrf_policy=SsrfPolicy.from_config(config),
                                       renew_grace_s=config.api_key_renew_grace_s)
    generated = services.users.ensure_admin(config.admin_password)
    if generated:
        from ..services.users import announce_generated_password
        announce_generated_password(generated)

    app = Flask("evgate.management")
    app.extensions["evgate.config"] = config
    app.extensions["evgate.repository"] = repository
    app.extensions["evgate.services"] = services
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False  # `a//b` is a JSON 404, not an HTML 308 redirect
    errors.init_app(app)
    body.init_app(app)
    auth.init_app(app, services.users)

    from .resources import apis, applications, plans, portal, subscriptions, users
    for module in (apis, plans, subscriptions, applications, users, portal):
        app.register_blueprint(module.bp)
    from .resources import v2
    v2.register(app)

    from . import console
    console.init_app(app, config, repository)

    @app.get("/management/openapi.json")
    @auth.access(auth.PUBLIC)
    def openapi() -> Response:
        from .openapi import document
        return json_response(document())

    app.wsgi_app = TolerateTrailingSlash(app.wsgi_app)  # type: ignore[method-assign]
    from ..security.forwarded import behind_trusted_proxies
    behind_trusted_proxies(app, config.trusted_proxies)
    return app

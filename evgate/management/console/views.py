"""Console pages: sign-in, APIs, plans, subscriptions, applications.

Every read and every change goes through evgate.services bound to the signed-in user
(`services()`), the very calls the REST API makes: the console has no other way to change
state. A rejected change is shown on the page it came from, with the service's message (and a
definition's problems at their JSON path), with the 4xx status the REST API would answer.
"""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlparse

from flask import (Response, flash, g, redirect, render_template, request, url_for)
from werkzeug.exceptions import HTTPException

from ...errors import (BadRequestError, ConflictError, DefinitionError, EvgateError,
                       GatewayError, NotFoundError)
from ..resources import services
from .blueprint import bp, current_user, is_admin, sign_in

logger = logging.getLogger(__name__)


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"user": g.get("user"), "is_admin": is_admin()}


def _delivery(subscriptions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Webhook delivery counts (gateway metrics) of the webhook subscriptions shown."""
    if not any((s.get("configuration") or {}).get("entrypointId") == "webhook"
               for s in subscriptions):
        return {}
    from .charts import delivery_counts
    return delivery_counts()


# -- errors as pages -------------------------------------------------------------------------
@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", status=exc.code, message=exc.description), exc.code or 500


@bp.errorhandler(NotFoundError)
def _not_found(exc: NotFoundError) -> tuple[str, int]:
    return render_template("error.html", status=404, message=str(exc)), 404


@bp.errorhandler(GatewayError)
def _gateway_error(exc: GatewayError) -> Response:
    response = Response(render_template("error.html", status=exc.status, message=exc.message),
                        exc.status, mimetype="text/html")
    for name, value in (exc.headers or {}).items():  # Retry-After of a 429 / 503
        response.headers[name] = value
    return response


def _status_of(exc: EvgateError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, GatewayError):
        return exc.status
    return 400  # DefinitionError, ConflictError (the REST API answers 400 too)


def _problems(exc: EvgateError) -> list[dict[str, str]]:
    if isinstance(exc, DefinitionError):
        return list(exc.problems)
    return [{"path": "", "message": str(getattr(exc, "message", None) or exc)}]


def _back(default: str) -> str:
    """Where to return after an action: the page it came from, if it is a console page."""
    target = request.form.get("next") or ""
    parsed = urlparse(target)
    if not parsed.scheme and not parsed.netloc and target.startswith("/console/"):
        return target
    return default


def _act(fn: Any, done: str, back: str) -> Response:
    """Run one service call; flash its outcome and go back (303). A rejected call keeps
    its 4xx status on the page it redirects to via the flash, and is logged at INFO."""
    try:
        fn()
    except (DefinitionError, ConflictError, BadRequestError) as exc:
        for problem in _problems(exc):
            where = f"{problem['path']}: " if problem.get("path") else ""
            flash(f"{where}{problem['message']}", "error")
        return redirect(back, 303)
    flash(done, "ok")
    return redirect(back, 303)


# -- sign-in ---------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    from ...security.login import LoginBusy, LoginThrottled
    next_page = request.values.get("next") or ""
    if not next_page.startswith("/console/") or urlparse(next_page).netloc:
        next_page = url_for("console.apis")
    if request.method == "GET":
        if current_user() is not None:
            return redirect(next_page)
        return render_template("login.html", next=next_page)
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    users = services_app().users
    try:
        user = users.authenticate(username, password, client=request.remote_addr) \
            if username else None
    except (LoginThrottled, LoginBusy) as exc:
        response = Response(render_template("login.html", next=next_page, error=exc.message,
                                            username=username), exc.status)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response
    if user is None:
        logger.info("refused console login for user %r from %s", username, request.remote_addr)
        return render_template("login.html", next=next_page, username=username,
                               error="wrong user name or password"), 401
    sign_in(user)
    logger.info("console login: %s from %s", user["username"], request.remote_addr)
    return redirect(next_page, 303)


@bp.post("/logout")
def logout() -> Response:
    from flask import session
    session.clear()
    response = redirect(url_for("console.login"), 303)
    return response


def services_app() -> Any:
    from flask import current_app
    return current_app.extensions["evgate.services"]


# -- APIs ------------------------------------------------------------------------------------
@bp.get("/")
def home() -> Response:
    return redirect(url_for("console.apis"))


def api_summary(api: dict[str, Any]) -> dict[str, Any]:
    listeners = api.get("listeners") or []
    paths = [p.get("path") for lst in listeners for p in (lst.get("paths") or [])
             if isinstance(p, dict)]
    entrypoints = [e.get("type") for lst in listeners for e in (lst.get("entrypoints") or [])
                   if isinstance(e, dict)]
    endpoints = [e.get("type") for grp in api.get("endpointGroups") or []
                 for e in (grp.get("endpoints") or []) if isinstance(e, dict)]
    return {"id": api["id"], "name": api.get("name"), "state": api.get("state"),
            "deployedAt": api.get("deployedAt"), "paths": paths, "entrypoints": entrypoints,
            "endpoints": endpoints, "kafka": "kafka" in endpoints,
            "plans": api.get("plans") or []}


@bp.get("/apis")
def apis() -> str:
    rows = [api_summary(a) for a in services().apis.list()]
    return render_template("apis.html", apis=rows)


@bp.post("/apis/import")
def import_api() -> Any:
    upload = request.files.get("definition")
    text = upload.read().decode("utf-8", errors="replace") if upload else \
        request.form.get("text", "")
    try:
        definition = json.loads(text)
    except ValueError as exc:
        problems = [{"path": "$", "message": f"not JSON: {exc}"}]
        return render_template("import.html", problems=problems, text=text), 400
    try:
        api = services().apis.import_definition(definition)
    except (DefinitionError, ConflictError, BadRequestError) as exc:
        return render_template("import.html", problems=_problems(exc), text=text), \
            _status_of(exc)
    flash(f"imported, deployed and started API {api.get('name')}", "ok")
    return redirect(url_for("console.api", api_id=api["id"]), 303)


def _definition_text(api: dict[str, Any]) -> str:
    shown = {k: v for k, v in api.items()
             if k not in ("state", "deployedAt", "createdAt", "updatedAt", "plans")}
    return json.dumps(shown, indent=2, ensure_ascii=False)


@bp.get("/apis/<api_id>")
def api(api_id: str) -> str:
    return _api_page(api_id)


def _api_page(api_id: str, *, text: str | None = None,
              problems: list[dict[str, str]] | None = None) -> str:
    svc = services()
    entity = svc.apis.get(api_id)
    subs = svc.subscriptions.list(api_id)
    return render_template("api.html", api=entity, summary=api_summary(entity),
                           definition=text if text is not None else _definition_text(entity),
                           problems=problems or [], subscriptions=subs,
                           delivery=_delivery(subs),
                           applications={a["id"]: a for a in svc.applications.list()})


@bp.post("/apis/<api_id>/definition")
def save_definition(api_id: str) -> Any:
    text = request.form.get("definition", "")
    try:
        definition = json.loads(text)
    except ValueError as exc:
        return _api_page(api_id, text=text,
                         problems=[{"path": "$", "message": f"not JSON: {exc}"}]), 400
    try:
        services().apis.update(api_id, definition)
    except (DefinitionError, ConflictError, BadRequestError) as exc:
        return _api_page(api_id, text=text, problems=_problems(exc)), _status_of(exc)
    flash("definition saved (deploy it to run it on the gateways)", "ok")
    return redirect(url_for("console.api", api_id=api_id), 303)


_API_ACTIONS = {"deploy": "deployed", "start": "started", "stop": "stopped"}


@bp.post("/apis/<api_id>/<action>")
def api_action(api_id: str, action: str) -> Response:
    if action not in _API_ACTIONS:
        raise BadRequestError(f"unknown API action {action!r} (deploy, start or stop)")
    apis_service = services().apis
    call = {"deploy": lambda: apis_service.deploy(api_id),
            "start": lambda: apis_service.start(api_id),
            "stop": lambda: apis_service.stop(api_id)}[action]
    return _act(call, f"API {_API_ACTIONS[action]}", _back(url_for("console.api", api_id=api_id)))


@bp.post("/apis/<api_id>/plans")
def create_plan(api_id: str) -> Response:
    def create() -> None:
        try:
            body = json.loads(request.form.get("plan", ""))
        except ValueError as exc:
            raise BadRequestError(f"the plan is not JSON: {exc}") from None
        services().plans.create(api_id, body)
    return _act(create, "plan created (staging)", url_for("console.api", api_id=api_id))


_PLAN_ACTIONS = {"publish": "published", "deprecate": "deprecated", "close": "closed"}


@bp.post("/apis/<api_id>/plans/<plan_id>/<action>")
def plan_action(api_id: str, plan_id: str, action: str) -> Response:
    if action not in _PLAN_ACTIONS:
        raise BadRequestError(f"unknown plan action {action!r} (publish, deprecate or close)")
    plans = services().plans
    return _act(lambda: getattr(plans, action)(api_id, plan_id), f"plan {_PLAN_ACTIONS[action]}",
                url_for("console.api", api_id=api_id))


# -- subscriptions and applications ------------------------------------------------------------
_SUB_ACTIONS = ("approve", "reject", "pause", "resume", "close")


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/<action>")
def subscription_action(api_id: str, sub_id: str, action: str) -> Response:
    if action not in _SUB_ACTIONS:
        raise BadRequestError(f"unknown subscription action {action!r} "
                              f"({', '.join(_SUB_ACTIONS)})")
    subs = services().subscriptions
    reason = request.form.get("reason")  # checked and kept by the service (publisherMessage)
    calls = {
        "approve": lambda: subs.process(api_id, sub_id, {"accepted": True, "reason": reason}),
        "reject": lambda: subs.process(api_id, sub_id, {"accepted": False, "reason": reason}),
        "pause": lambda: subs.change_status(api_id, sub_id, "PAUSED"),
        "resume": lambda: subs.change_status(api_id, sub_id, "RESUMED"),
        "close": lambda: subs.close(api_id, sub_id),
    }
    done = {"approve": "approved", "reject": "rejected", "pause": "paused",
            "resume": "resumed", "close": "closed"}[action]
    return _act(calls[action], f"subscription {done}",
                _back(url_for("console.subscriptions")))


@bp.get("/subscriptions")
def subscriptions() -> str:
    svc = services()
    status = request.args.get("status") or ""
    api_filter = request.args.get("api") or None
    app_filter = request.args.get("application") or None
    try:
        rows = svc.subscriptions.list(api_filter, statuses=[status] if status else None,
                                      application_id=app_filter)
    except NotFoundError:
        rows = []
    apis_by_id = {a["id"]: a for a in svc.apis.list()}
    return render_template("subscriptions.html", subscriptions=rows, apis=apis_by_id,
                           delivery=_delivery(rows),
                           applications={a["id"]: a for a in svc.applications.list()},
                           status=status, api_filter=api_filter or "",
                           app_filter=app_filter or "",
                           fragment=request.headers.get("HX-Request") == "true")


@bp.get("/applications")
def applications() -> str:
    return render_template("applications.html", applications=services().applications.list())


@bp.get("/applications/<app_id>")
def application(app_id: str) -> str:
    svc = services()
    app = svc.applications.get(app_id)  # 404 for another user's application
    subs = svc.subscriptions.list(application_id=app_id)
    return render_template("application.html", application=app, subscriptions=subs,
                           delivery=_delivery(subs),
                           apis={a["id"]: a for a in svc.apis.list()})

"""The management API v2 of Gravitee 4.x (`/management/v2/...`): APIs, plans, subscriptions,
API keys and the plugin catalogue, over the same services as the 3.20 paths (so the same
roles, ownership and masking rules), in 4.x's shapes (evgate/definition/v4x.py), with 4.x's
paging (evgate/management/paging.py) and error bodies (evgate/management/errors.py).

The blueprint is registered under `/management/v2/environments/<envId>` and
`/management/v2/organizations/<orgId>/environments/<envId>`; evgate has one organization and
one environment, `DEFAULT` (any other id is a 404).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ... import plugins
from ...definition import v4x
from ...errors import BadRequestError, NotFoundError
from ..auth import PORTAL as ANY_USER, access
from ..body import json_body, json_response, lenient_json
from ..paging import paged
from . import services

ENVIRONMENT_PREFIXES = ("/management/v2/environments/<env_id>",
                        "/management/v2/organizations/<org_id>/environments/<env_id>")
PLUGIN_PREFIXES = ("/management/v2", "/management/v2/organizations/<org_id>")

bp = Blueprint("v2", __name__)
plugins_bp = Blueprint("v2_plugins", __name__)


def _only_default(endpoint: str | None, values: dict[str, Any] | None) -> None:
    for name, kind in (("org_id", "Organization"), ("env_id", "Environment")):
        value = (values or {}).pop(name, None)
        if value is not None and value != "DEFAULT":
            raise NotFoundError(kind, value)


bp.url_value_preprocessor(_only_default)
plugins_bp.url_value_preprocessor(_only_default)


def _object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequestError("$: the body must be a JSON object", key="body.invalid")
    return body


def _optional_object() -> dict[str, Any]:
    body = lenient_json()
    return body if isinstance(body, dict) else {}


def _csv(name: str) -> list[str] | None:
    values = [v.strip() for raw in request.args.getlist(name) for v in raw.split(",")
              if v.strip()]
    return values or None


# -- APIs --------------------------------------------------------------------------------------
@bp.get("/apis")
def list_apis() -> Response:
    found = services().apis.search(request.args.get("q"))
    return json_response(paged([v4x.api_v2(a) for a in found]))


@bp.post("/apis/_search")
@access(ANY_USER)
def search_apis() -> Response:
    """A read: any user may search the catalogue (the body is the query)."""
    body = _optional_object()
    found = services().apis.search(body.get("query") if "query" in body
                                   else request.args.get("q"),
                                   ids=body.get("ids"), types=body.get("apiTypes"),
                                   states=body.get("statuses"), tags=body.get("tags"))
    return json_response(paged([v4x.api_v2(a) for a in found]))


@bp.post("/apis")
def create_api() -> Response:
    return json_response(v4x.api_v2(services().apis.create(_object())), 201)


@bp.post("/apis/_import/definition")
def import_api() -> Response:
    """An export (`{api, plans}`) or a bare definition: created with its plans, not started."""
    definition = v4x.definition_from_export(_object())
    return json_response(v4x.api_v2(services().apis.create(definition)), 201)


@bp.post("/apis/_verify/paths")
def verify_paths() -> Response:
    body = _object()
    return json_response(services().apis.verify_paths(body.get("apiId"), body.get("paths")))


@bp.get("/apis/<api_id>")
def get_api(api_id: str) -> Response:
    return json_response(v4x.api_v2(services().apis.get(api_id)))


@bp.put("/apis/<api_id>")
def update_api(api_id: str) -> Response:
    return json_response(v4x.api_v2(services().apis.update(api_id, _object())))


@bp.delete("/apis/<api_id>")
def delete_api(api_id: str) -> Response:
    services().apis.delete(api_id)
    return Response(status=204)


@bp.post("/apis/<api_id>/_start")
def start_api(api_id: str) -> Response:
    services().apis.start(api_id)
    return Response(status=204)


@bp.post("/apis/<api_id>/_stop")
def stop_api(api_id: str) -> Response:
    services().apis.stop(api_id)
    return Response(status=204)


@bp.post("/apis/<api_id>/deployments")
def deploy_api(api_id: str) -> Response:
    label = _optional_object().get("deploymentLabel")
    if label is not None and not isinstance(label, str):
        raise BadRequestError("$.deploymentLabel: must be a string", key="api.deploy.invalid")
    services().apis.deploy(api_id, label)
    return json_response(services().apis.current_deployment(api_id), 202)


@bp.get("/apis/<api_id>/deployments/current")
def current_deployment(api_id: str) -> Response:
    return json_response(services().apis.current_deployment(api_id))


@bp.get("/apis/<api_id>/_export/definition")
def export_api(api_id: str) -> Response:
    """`{api, plans}`: what `_import/definition` takes back (secrets stay masked)."""
    api = services().apis.get(api_id)
    plans = [v4x.plan_v2(p) for p in services().plans.list(api_id)]
    return json_response({"api": v4x.api_v2(api), "plans": plans})


# -- plans -------------------------------------------------------------------------------------
@bp.get("/apis/<api_id>/plans")
def list_plans(api_id: str) -> Response:
    statuses = _csv("statuses")
    found = services().plans.list(api_id, ",".join(statuses) if statuses else None)
    security = {s.upper() for s in _csv("securities") or []}
    mode = (request.args.get("mode") or "").upper()
    shown = [v4x.plan_v2(p) for p in found]
    shown = [p for p in shown if (not security or (p.get("security") or {}).get("type")
                                  in security) and (not mode or p["mode"] == mode)]
    return json_response(paged(shown))


@bp.post("/apis/<api_id>/plans")
def create_plan(api_id: str) -> Response:
    return json_response(v4x.plan_v2(services().plans.create(api_id, _object())), 201)


@bp.get("/apis/<api_id>/plans/<plan_id>")
def get_plan(api_id: str, plan_id: str) -> Response:
    return json_response(v4x.plan_v2(services().plans.get(api_id, plan_id)))


@bp.put("/apis/<api_id>/plans/<plan_id>")
def update_plan(api_id: str, plan_id: str) -> Response:
    body = _object()
    if "security" not in body and "mode" not in body:
        # 4.x's UpdatePlanV4 may leave security out: the plan keeps its own
        current = services().plans.get(api_id, plan_id)
        body = {**body, "security": current["security"]}
    return json_response(v4x.plan_v2(services().plans.update(api_id, plan_id, body)))


@bp.delete("/apis/<api_id>/plans/<plan_id>")
def delete_plan(api_id: str, plan_id: str) -> Response:
    services().plans.delete(api_id, plan_id)
    return Response(status=204)


@bp.post("/apis/<api_id>/plans/<plan_id>/_publish")
def publish_plan(api_id: str, plan_id: str) -> Response:
    return json_response(v4x.plan_v2(services().plans.publish(api_id, plan_id)))


@bp.post("/apis/<api_id>/plans/<plan_id>/_deprecate")
def deprecate_plan(api_id: str, plan_id: str) -> Response:
    return json_response(v4x.plan_v2(services().plans.deprecate(api_id, plan_id)))


@bp.post("/apis/<api_id>/plans/<plan_id>/_close")
def close_plan(api_id: str, plan_id: str) -> Response:
    return json_response(v4x.plan_v2(services().plans.close(api_id, plan_id)))


# -- subscriptions -----------------------------------------------------------------------------
@bp.get("/apis/<api_id>/subscriptions")
def list_subscriptions(api_id: str) -> Response:
    subs = services().subscriptions.list(api_id, statuses=_v2_statuses())
    applications, plan_ids = _csv("applicationIds"), _csv("planIds")
    if applications:
        subs = [s for s in subs if s["application"] in applications]
    if plan_ids:
        subs = [s for s in subs if s["plan"] in plan_ids]
    api_key = request.args.get("apiKey")
    if api_key:
        subs = [s for s in subs if any(k["key"] == api_key for k in s["keys"])]
    return json_response(paged([v4x.subscription_v2(s) for s in subs]))


def _v2_statuses() -> list[str] | None:
    """4.x lists FAILURE as a consumer status: a status filter ACCEPTED includes it."""
    statuses = _csv("statuses")
    if statuses and "ACCEPTED" in {s.upper() for s in statuses}:
        statuses.append("FAILURE")
    return statuses


@bp.post("/apis/<api_id>/subscriptions")
def create_subscription(api_id: str) -> Response:
    body = _object()
    created = services().subscriptions.create(
        api_id=api_id, plan_id=_string(body, "planId"),
        application_id=_string(body, "applicationId"),
        body=v4x.subscription_body(body), api_key=_string(body, "customApiKey"))
    return json_response(v4x.subscription_v2(created), 201)


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"$.{name}: must be a string", key="subscription.invalid")
    return value


@bp.post("/apis/<api_id>/subscriptions/_verify")
def verify_subscription(api_id: str) -> Response:
    body = _object()
    return json_response(services().subscriptions.verify_custom_key(
        api_id, body.get("applicationId"), body.get("apiKey")))


@bp.get("/apis/<api_id>/subscribers")
def list_subscribers(api_id: str) -> Response:
    apps = services().subscriptions.subscribers(api_id, request.args.get("name"))
    return json_response(paged([v4x.subscriber_v2(app) for app in apps]))


@bp.get("/apis/<api_id>/subscriptions/<sub_id>")
def get_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(v4x.subscription_v2(services().subscriptions.get(sub_id, api_id)))


@bp.put("/apis/<api_id>/subscriptions/<sub_id>")
def update_subscription(api_id: str, sub_id: str) -> Response:
    body = v4x.subscription_body(_object())
    return json_response(v4x.subscription_v2(
        services().subscriptions.update(sub_id, body, api_id=api_id)))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/_accept")
def accept_subscription(api_id: str, sub_id: str) -> Response:
    body = _optional_object()
    return json_response(v4x.subscription_v2(services().subscriptions.accept(
        api_id, sub_id, custom_key=_string(body, "customApiKey"),
        starting_at=body.get("startingAt"), ending_at=body.get("endingAt"),
        reason=body.get("reason"))))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/_reject")
def reject_subscription(api_id: str, sub_id: str) -> Response:
    body = _optional_object()
    return json_response(v4x.subscription_v2(services().subscriptions.reject(
        api_id, sub_id, reason=body.get("reason"))))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/_pause")
def pause_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(v4x.subscription_v2(
        services().subscriptions.change_status(api_id, sub_id, "PAUSED")))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/_resume")
def resume_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(v4x.subscription_v2(
        services().subscriptions.change_status(api_id, sub_id, "RESUMED")))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/_close")
def close_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(v4x.subscription_v2(services().subscriptions.close(api_id, sub_id)))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/_transfer")
def transfer_subscription(api_id: str, sub_id: str) -> Response:
    body = _object()
    return json_response(v4x.subscription_v2(
        services().subscriptions.transfer(api_id, sub_id, body.get("planId"))))


# -- API keys of a subscription ----------------------------------------------------------------
@bp.get("/apis/<api_id>/subscriptions/<sub_id>/api-keys")
def list_api_keys(api_id: str, sub_id: str) -> Response:
    return json_response(paged(services().subscriptions.api_keys(api_id, sub_id)))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/api-keys/_renew")
def renew_api_key(api_id: str, sub_id: str) -> Response:
    body = _optional_object()
    return json_response(services().subscriptions.renew_key(
        api_id, sub_id, _string(body, "customApiKey")), 201)


@bp.put("/apis/<api_id>/subscriptions/<sub_id>/api-keys/<key_id>")
def update_api_key(api_id: str, sub_id: str, key_id: str) -> Response:
    body = _object()
    return json_response(services().subscriptions.set_key_expiry(
        api_id, sub_id, key_id, body.get("expireAt")))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/api-keys/<key_id>/_revoke")
def revoke_api_key(api_id: str, sub_id: str, key_id: str) -> Response:
    return json_response(services().subscriptions.set_key_revoked(api_id, sub_id, key_id, True))


@bp.post("/apis/<api_id>/subscriptions/<sub_id>/api-keys/<key_id>/_reactivate")
def reactivate_api_key(api_id: str, sub_id: str, key_id: str) -> Response:
    return json_response(services().subscriptions.set_key_revoked(api_id, sub_id, key_id,
                                                                  False))


# -- the plugin catalogue ----------------------------------------------------------------------
_KINDS = {"entrypoints": "entrypoints", "endpoints": "endpoints", "policies": "policies"}


def _plugin(kind: str, type_: str) -> dict[str, Any]:
    from ... import __version__
    cls = plugins.load(kind, type_)
    doc = (cls.__doc__ or "").strip().splitlines()
    return {"id": type_, "name": type_, "version": __version__,
            "description": doc[0] if doc else "", "deployed": True}


def _kind(kind: str) -> str:
    if kind not in _KINDS:
        raise NotFoundError("PluginKind", kind)
    return _KINDS[kind]


@plugins_bp.get("/plugins/<kind>")
def list_plugins(kind: str) -> Response:
    kind = _kind(kind)
    return json_response([_plugin(kind, t) for t in plugins.known(kind)])


@plugins_bp.get("/plugins/<kind>/<type_>")
def get_plugin(kind: str, type_: str) -> Response:
    kind = _kind(kind)
    if not plugins.is_known(kind, type_):
        raise NotFoundError("Plugin", type_)
    return json_response(_plugin(kind, type_))


@plugins_bp.get("/plugins/<kind>/<type_>/schema")
def plugin_schema(kind: str, type_: str) -> Response:
    kind = _kind(kind)
    if not plugins.is_known(kind, type_):
        raise NotFoundError("Plugin", type_)
    return json_response(plugins.configuration_schema(kind, type_))


def register(app: Any) -> None:
    for index, prefix in enumerate(ENVIRONMENT_PREFIXES):
        app.register_blueprint(bp, url_prefix=prefix, name=f"v2_{index}")
    for index, prefix in enumerate(ENVIRONMENT_PREFIXES + PLUGIN_PREFIXES):
        app.register_blueprint(plugins_bp, url_prefix=prefix, name=f"v2_plugins_{index}")

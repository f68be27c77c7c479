"""The consumer-side portal API (`/portal/environments/DEFAULT`) the approval workflow uses:
applications, subscriptions (create, read, update configuration, `_changeConsumerStatus`).
Any authenticated user may call it; a USER sees and changes only its own applications and
their subscriptions, the services see to that (docs/management-api.md, "Ownership")."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..auth import PORTAL as PORTAL_ACCESS, access
from ..body import json_body, json_response, optional_string
from . import PORTAL, services

bp = Blueprint("portal", __name__, url_prefix=PORTAL)


@bp.get("/applications")
@access(PORTAL_ACCESS)
def portal_list_applications() -> Response:
    return json_response(services().applications.list())


@bp.post("/applications")
@access(PORTAL_ACCESS)
def portal_create_application() -> Response:
    return json_response(services().applications.create(json_body(),
                                                        owner=g.user["username"]), 201)


@bp.get("/applications/<app_id>")
@access(PORTAL_ACCESS)
def portal_get_application(app_id: str) -> Response:
    return json_response(services().applications.get(app_id))


@bp.get("/subscriptions")
@access(PORTAL_ACCESS)
def portal_list_subscriptions() -> Response:
    return json_response(services().subscriptions.list(
        request.args.get("api"), application_id=request.args.get("application"),
        plan_id=request.args.get("plan")))


@bp.post("/subscriptions")
@access(PORTAL_ACCESS)
def portal_create_subscription() -> Response:
    """`{application, plan, configuration, metadata?}`; pending when the plan is manual."""
    body = json_body()
    application = optional_string(body, "application")
    plan = optional_string(body, "plan")
    created = services().subscriptions.create(plan_id=plan, application_id=application,
                                              body=body)
    return json_response(created, 201)


@bp.get("/subscriptions/<sub_id>")
@access(PORTAL_ACCESS)
def portal_get_subscription(sub_id: str) -> Response:
    return json_response(services().subscriptions.get(sub_id))


@bp.put("/subscriptions/<sub_id>")
@access(PORTAL_ACCESS)
def portal_update_subscription(sub_id: str) -> Response:
    return json_response(services().subscriptions.update(sub_id, json_body(),
                                                         by_consumer=True))


@bp.post("/subscriptions/<sub_id>/_changeConsumerStatus")
@access(PORTAL_ACCESS)
def portal_change_consumer_status(sub_id: str) -> Response:
    """`?status=STARTED|STOPPED`; the body, if any, is ignored."""
    return json_response(services().subscriptions.change_consumer_status(
        sub_id, request.args.get("status")))

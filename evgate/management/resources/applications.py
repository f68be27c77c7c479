"""Applications (management side): `applications`."""
from __future__ import annotations

from flask import Blueprint, Response, g

from ..body import json_body, json_response
from . import MANAGEMENT, services

bp = Blueprint("applications", __name__, url_prefix=MANAGEMENT + "/applications")


@bp.get("")
def list_applications() -> Response:
    return json_response(services().applications.list())


@bp.post("")
def create_application() -> Response:
    owner = g.user["username"]
    return json_response(services().applications.create(json_body(), owner=owner), 201)


@bp.get("/<app_id>")
def get_application(app_id: str) -> Response:
    return json_response(services().applications.get(app_id))


@bp.put("/<app_id>")
def update_application(app_id: str) -> Response:
    return json_response(services().applications.update(app_id, json_body()))


@bp.delete("/<app_id>")
def delete_application(app_id: str) -> Response:
    services().applications.delete(app_id)
    return Response(status=204)


@bp.get("/<app_id>/subscriptions")
def application_subscriptions(app_id: str) -> Response:
    services().applications.get(app_id)
    return json_response(services().subscriptions.list(application_id=app_id))

"""Plans of an API: `v4/apis/{api}/plans` (+ `_publish`, `_deprecate`, `_close`)."""
from __future__ import annotations

from flask import Blueprint, Response, request

from ..body import json_body, json_response
from . import MANAGEMENT, services

bp = Blueprint("plans", __name__, url_prefix=MANAGEMENT + "/v4/apis/<api_id>/plans")


@bp.get("")
def list_plans(api_id: str) -> Response:
    return json_response(services().plans.list(api_id, request.args.get("status")))


@bp.post("")
def create_plan(api_id: str) -> Response:
    return json_response(services().plans.create(api_id, json_body()), 201)


@bp.get("/<plan_id>")
def get_plan(api_id: str, plan_id: str) -> Response:
    return json_response(services().plans.get(api_id, plan_id))


@bp.put("/<plan_id>")
def update_plan(api_id: str, plan_id: str) -> Response:
    return json_response(services().plans.update(api_id, plan_id, json_body()))


@bp.delete("/<plan_id>")
def delete_plan(api_id: str, plan_id: str) -> Response:
    services().plans.delete(api_id, plan_id)
    return Response(status=204)


@bp.post("/<plan_id>/_publish")
def publish_plan(api_id: str, plan_id: str) -> Response:
    return json_response(services().plans.publish(api_id, plan_id))


@bp.post("/<plan_id>/_deprecate")
def deprecate_plan(api_id: str, plan_id: str) -> Response:
    return json_response(services().plans.deprecate(api_id, plan_id))


@bp.post("/<plan_id>/_close")
def close_plan(api_id: str, plan_id: str) -> Response:
    return json_response(services().plans.close(api_id, plan_id))

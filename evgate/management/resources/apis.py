"""APIs: `v4/apis` (create, list, read, update, delete, start/stop by `?action=`, deploy)."""
from __future__ import annotations

from flask import Blueprint, Response, request

from ...errors import BadRequestError
from ..body import json_body, json_response, lenient_json
from . import MANAGEMENT, services

bp = Blueprint("apis", __name__, url_prefix=MANAGEMENT + "/v4/apis")


@bp.get("")
def list_apis() -> Response:
    return json_response(services().apis.list())


@bp.post("")
def create_api() -> Response:
    return json_response(services().apis.create(json_body()), 201)


@bp.get("/<api_id>")
def get_api(api_id: str) -> Response:
    return json_response(services().apis.get(api_id))


@bp.put("/<api_id>")
def update_api(api_id: str) -> Response:
    return json_response(services().apis.update(api_id, json_body()))


@bp.delete("/<api_id>")
def delete_api(api_id: str) -> Response:
    services().apis.delete(api_id)
    return Response(status=204)


@bp.post("/<api_id>")
def api_action(api_id: str) -> Response:
    """`?action=START|STOP` (any case); the body, if any, is ignored."""
    action = (request.args.get("action") or "").strip().upper()
    if action == "START":
        services().apis.start(api_id)
    elif action == "STOP":
        services().apis.stop(api_id)
    else:
        raise BadRequestError("query parameter action must be START or STOP",
                              key="api.action.invalid")
    return Response(status=204)


@bp.post("/<api_id>/deploy")
def deploy_api(api_id: str) -> Response:
    body = lenient_json()
    label = body.get("deploymentLabel") if isinstance(body, dict) else None
    return json_response(services().apis.deploy(api_id, label if isinstance(label, str) else None))

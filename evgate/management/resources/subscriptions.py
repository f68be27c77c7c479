"""Subscriptions of an API (publisher side): `v4/apis/{api}/subscriptions`."""
from __future__ import annotations

from flask import Blueprint, Response, request

from ...errors import BadRequestError
from ..body import json_body, json_response, lenient_json, optional_string
from . import MANAGEMENT, services

bp = Blueprint("subscriptions", __name__,
               url_prefix=MANAGEMENT + "/v4/apis/<api_id>/subscriptions")


def _statuses() -> list[str] | None:
    raw = request.args.get("status")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


@bp.get("")
def list_subscriptions(api_id: str) -> Response:
    return json_response(services().subscriptions.list(
        api_id, statuses=_statuses(), application_id=request.args.get("application"),
        plan_id=request.args.get("plan")))


@bp.post("")
def create_subscription(api_id: str) -> Response:
    """`?application=&plan=` (or the same names in the body), body `{configuration, metadata}`."""
    body = json_body(required=False) or {}
    application = request.args.get("application") or optional_string(body, "application")
    plan = request.args.get("plan") or optional_string(body, "plan")
    created = services().subscriptions.create(api_id=api_id, plan_id=plan,
                                              application_id=application, body=body)
    return json_response(created, 201)


@bp.get("/<sub_id>")
def get_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(services().subscriptions.get(sub_id, api_id))


@bp.put("/<sub_id>")
def update_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(services().subscriptions.update(sub_id, json_body(), api_id=api_id))


@bp.post("/<sub_id>/_process")
def process_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(services().subscriptions.process(api_id, sub_id, json_body()))


@bp.post("/<sub_id>/_accept")
def accept_subscription(api_id: str, sub_id: str) -> Response:
    """Gravitee 4.x's accept: `{reason?, customApiKey?}` (no body: no reason)."""
    return json_response(services().subscriptions.process(
        api_id, sub_id, {**_object_body(), "accepted": True}))


@bp.post("/<sub_id>/_reject")
def reject_subscription(api_id: str, sub_id: str) -> Response:
    """Gravitee 4.x's reject: `{reason?}` (no body: no reason)."""
    body = _object_body()
    return json_response(services().subscriptions.process(
        api_id, sub_id, {"accepted": False, "reason": body.get("reason")}))


def _object_body() -> dict:
    body = json_body(required=False)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object", key="subscription.process.invalid")
    return body


@bp.post("/<sub_id>/status")
def change_subscription_status(api_id: str, sub_id: str) -> Response:
    """`?status=PAUSED|RESUMED|CLOSED`; the body, if any, is ignored."""
    status = request.args.get("status")
    if status is None:
        body = lenient_json()
        status = body.get("status") if isinstance(body, dict) else None
    return json_response(services().subscriptions.change_status(api_id, sub_id, status))


@bp.post("/<sub_id>/_close")
def close_subscription(api_id: str, sub_id: str) -> Response:
    return json_response(services().subscriptions.close(api_id, sub_id))

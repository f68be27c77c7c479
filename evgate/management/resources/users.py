"""Management users (ADMIN only): list, create or change a password and roles."""
from __future__ import annotations

from flask import Blueprint, Response

from ...errors import BadRequestError
from ..auth import ADMIN, access
from ..body import json_body, json_response
from . import MANAGEMENT, services

bp = Blueprint("users", __name__, url_prefix=MANAGEMENT + "/users")


@bp.get("")
@access(ADMIN)
def list_users() -> Response:
    return json_response(services().users.list())


@bp.put("/<username>")
@access(ADMIN)
def set_user(username: str) -> Response:
    """`{"password": "...", "roles": ["USER"]}`: create the user or change it."""
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object", key="user.invalid")
    return json_response(services().users.set_password(username, body.get("password"),
                                                       body.get("roles")))

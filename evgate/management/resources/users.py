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
    roles = body.get("roles")
    if not (roles is None or isinstance(roles, str) or
            (isinstance(roles, list) and all(isinstance(r, str) for r in roles))):
        raise BadRequestError("$.roles: must be a role name or a list of role names",
                              key="user.roles.invalid")
    if len(username) > 255:
        raise BadRequestError("a user name has at most 255 characters",
                              key="user.username.invalid")
    return json_response(services().users.set_password(username, body.get("password"),
                                                       body.get("roles")))

"""The OpenAPI 3 document of the management API (served at `/management/openapi.json`).

Written as a table, not derived from the routes, so that a test comparing it with Flask's
url_map catches a route added without documentation or a documented path that is not routed.
"""
from __future__ import annotations

from typing import Any

from .resources import MANAGEMENT as M, PORTAL as P

_OBJ = {"type": "object", "additionalProperties": True}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["message", "http_status"], "properties": {
        "message": {"type": "string"}, "http_status": {"type": "integer"},
        "technicalCode": {"type": "string"}, "parameters": _OBJ,
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}}}}},
    "Api": {**_OBJ, "description": "A V4 API definition (Gravitee 3.20/4.x shape) with id, "
            "state (STARTED|STOPPED), deployedAt and its plans.",
            "required": ["name", "listeners", "endpointGroups"]},
    "Plan": {**_OBJ, "description": "{name, description, security: {type: key-less|api-key|"
             "jwt|subscription, configuration}, validation: auto|manual, flows, status}",
             "properties": {"name": {"type": "string"}, "security": _OBJ,
                            "validation": {"type": "string", "enum": ["auto", "manual"]},
                            "status": {"type": "string"}}},
    "Application": {**_OBJ, "required": ["name"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "settings": {**_OBJ, "description": "settings.app.type; settings.app.client_id for "
                     "jwt plans"}}},
    "SubscriptionRequest": {"type": "object", "properties": {
        "configuration": {**_OBJ, "description": "entrypointId (required for push plans), "
                          "callbackUrl, headers, auth ..."},
        "metadata": _OBJ, "application": {"type": "string"}, "plan": {"type": "string"}}},
    "Subscription": {"type": "object", "properties": {
        "id": {"type": "string"}, "api": {"type": "string"}, "plan": {"type": "string"},
        "application": {"type": "string"},
        "status": {"type": "string", "enum": ["PENDING", "ACCEPTED", "REJECTED", "PAUSED",
                                              "CLOSED", "FAILURE"]},
        "consumerStatus": {"type": "string", "enum": ["STARTED", "STOPPED"]},
        "configuration": _OBJ, "metadata": _OBJ, "failureCause": {"type": "string"},
        "publisherMessage": {"type": "string", "nullable": True,
                             "description": "the reason given when accepted or rejected"},
        "processedAt": {"type": "string", "format": "date-time", "nullable": True},
        "processedBy": {"type": "object", "nullable": True,
                        "description": "{id, displayName} of the ADMIN who processed it; "
                        "null for USER callers",
                        "properties": {"id": {"type": "string"},
                                       "displayName": {"type": "string"}}},
        "lastDeliveryAt": {"type": "string", "format": "date-time", "nullable": True,
                           "description": "newest successful webhook delivery (written "
                           "every few seconds, so up to that much behind)"},
        "keys": {"type": "array", "items": _OBJ}}},
    "Process": {"type": "object", "required": ["accepted"], "properties": {
        "accepted": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 1000},
        "customApiKey": {"type": "string"}}},
    "Accept": {"type": "object", "properties": {
        "reason": {"type": "string", "maxLength": 1000}, "customApiKey": {"type": "string"}}},
    "Reject": {"type": "object", "properties": {
        "reason": {"type": "string", "maxLength": 1000}}},
    "Deploy": {"type": "object", "properties": {"deploymentLabel": {"type": "string"}}},
    "User": {"type": "object", "properties": {"username": {"type": "string"},
                                              "roles": {"type": "array",
                                                        "items": {"type": "string"}}}},
    "UserUpdate": {"type": "object", "required": ["password"], "properties": {
        "password": {"type": "string"}, "roles": {"type": "array", "items": {"type": "string"}}}},
}


def _q(name: str, description: str, required: bool = False,
       enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


# (method, path, tag, summary, request schema, success status, response schema, query params)
OPERATIONS: list[tuple[str, str, str, str, str | None, int, str | None, list]] = [
    ("get", M + "/v4/apis", "APIs", "List APIs", None, 200, "Api[]", []),
    ("post", M + "/v4/apis", "APIs", "Create an API (stopped, not deployed)", "Api", 201, "Api",
     []),
    ("get", M + "/v4/apis/{api_id}", "APIs", "Read an API", None, 200, "Api", []),
    ("put", M + "/v4/apis/{api_id}", "APIs", "Update an API's saved definition", "Api", 200,
     "Api", []),
    ("delete", M + "/v4/apis/{api_id}", "APIs",
     "Delete an API with its plans, subscriptions and keys", None, 204, None, []),
    ("post", M + "/v4/apis/{api_id}", "APIs", "Start or stop an API (body ignored)", None, 204,
     None, [_q("action", "START or STOP (any case)", True, ["START", "STOP", "start", "stop"])]),
    ("post", M + "/v4/apis/{api_id}/deploy", "APIs",
     "Deploy the saved definition to the gateways", "Deploy", 200, "Api", []),
    ("get", M + "/v4/apis/{api_id}/plans", "Plans", "List plans", None, 200, "Plan[]",
     [_q("status", "comma separated statuses (staging, published, deprecated, closed)")]),
    ("post", M + "/v4/apis/{api_id}/plans", "Plans", "Create a plan (staging)", "Plan", 201,
     "Plan", []),
    ("get", M + "/v4/apis/{api_id}/plans/{plan_id}", "Plans", "Read a plan", None, 200, "Plan",
     []),
    ("put", M + "/v4/apis/{api_id}/plans/{plan_id}", "Plans", "Update a plan", "Plan", 200,
     "Plan", []),
    ("delete", M + "/v4/apis/{api_id}/plans/{plan_id}", "Plans",
     "Delete a staging or closed plan", None, 204, None, []),
    ("post", M + "/v4/apis/{api_id}/plans/{plan_id}/_publish", "Plans", "Publish a plan", None,
     200, "Plan", []),
    ("post", M + "/v4/apis/{api_id}/plans/{plan_id}/_deprecate", "Plans",
     "Deprecate a plan (existing subscribers keep access)", None, 200, "Plan", []),
    ("post", M + "/v4/apis/{api_id}/plans/{plan_id}/_close", "Plans",
     "Close a plan and its subscriptions", None, 200, "Plan", []),
    ("get", M + "/v4/apis/{api_id}/subscriptions", "Subscriptions", "List subscriptions",
     None, 200, "Subscription[]",
     [_q("status", "comma separated statuses"), _q("application", "application id"),
      _q("plan", "plan id")]),
    ("post", M + "/v4/apis/{api_id}/subscriptions", "Subscriptions",
     "Subscribe an application to a plan", "SubscriptionRequest", 201, "Subscription",
     [_q("application", "application id (or in the body)"),
      _q("plan", "plan id (or in the body)")]),
    ("get", M + "/v4/apis/{api_id}/subscriptions/{sub_id}", "Subscriptions",
     "Read a subscription", None, 200, "Subscription", []),
    ("put", M + "/v4/apis/{api_id}/subscriptions/{sub_id}", "Subscriptions",
     "Update a subscription's configuration and metadata", "SubscriptionRequest", 200,
     "Subscription", []),
    ("post", M + "/v4/apis/{api_id}/subscriptions/{sub_id}/_process", "Subscriptions",
     "Accept or reject a pending subscription", "Process", 200, "Subscription", []),
    ("post", M + "/v4/apis/{api_id}/subscriptions/{sub_id}/_accept", "Subscriptions",
     "Accept a pending subscription, with an optional reason", "Accept", 200, "Subscription",
     []),
    ("post", M + "/v4/apis/{api_id}/subscriptions/{sub_id}/_reject", "Subscriptions",
     "Reject a pending subscription, with an optional reason", "Reject", 200, "Subscription",
     []),
    ("post", M + "/v4/apis/{api_id}/subscriptions/{sub_id}/status", "Subscriptions",
     "Pause, resume or close a subscription (body ignored)", None, 200, "Subscription",
     [_q("status", "PAUSED, RESUMED or CLOSED", True, ["PAUSED", "RESUMED", "CLOSED"])]),
    ("post", M + "/v4/apis/{api_id}/subscriptions/{sub_id}/_close", "Subscriptions",
     "Close a subscription (revokes its keys)", None, 200, "Subscription", []),
    ("get", M + "/applications", "Applications", "List applications", None, 200,
     "Application[]", []),
    ("post", M + "/applications", "Applications", "Create an application", "Application", 201,
     "Application", []),
    ("get", M + "/applications/{app_id}", "Applications", "Read an application", None, 200,
     "Application", []),
    ("put", M + "/applications/{app_id}", "Applications", "Update an application",
     "Application", 200, "Application", []),
    ("delete", M + "/applications/{app_id}", "Applications",
     "Delete an application without open subscriptions", None, 204, None, []),
    ("get", M + "/applications/{app_id}/subscriptions", "Applications",
     "Subscriptions of an application", None, 200, "Subscription[]", []),
    ("get", M + "/users", "Users", "List management users (ADMIN)", None, 200, "User[]", []),
    ("put", M + "/users/{username}", "Users", "Create a user or set its password and roles "
     "(ADMIN)", "UserUpdate", 200, "User", []),
    ("get", P + "/applications", "Portal", "List applications", None, 200, "Application[]", []),
    ("post", P + "/applications", "Portal", "Create an application", "Application", 201,
     "Application", []),
    ("get", P + "/applications/{app_id}", "Portal", "Read an application", None, 200,
     "Application", []),
    ("get", P + "/subscriptions", "Portal", "List subscriptions", None, 200, "Subscription[]",
     [_q("api", "API id"), _q("application", "application id"), _q("plan", "plan id")]),
    ("post", P + "/subscriptions", "Portal",
     "Subscribe (pending until approved when the plan's validation is manual)",
     "SubscriptionRequest", 201, "Subscription", []),
    ("get", P + "/subscriptions/{sub_id}", "Portal", "Read a subscription", None, 200,
     "Subscription", []),
    ("put", P + "/subscriptions/{sub_id}", "Portal",
     "Change a subscription's configuration (back to PENDING on manual plans)",
     "SubscriptionRequest", 200, "Subscription", []),
    ("post", P + "/subscriptions/{sub_id}/_changeConsumerStatus", "Portal",
     "Stop or start consuming (body ignored)", None, 200, "Subscription",
     [_q("status", "STARTED or STOPPED", True, ["STARTED", "STOPPED"])]),
    ("get", "/management/openapi.json", "Meta", "This document (no authentication)", None, 200,
     None, []),
]


def _schema_ref(name: str) -> dict[str, Any]:
    if name.endswith("[]"):
        return {"type": "array", "items": {"$ref": f"#/components/schemas/{name[:-2]}"}}
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, tag, summary, request, status, response, query in OPERATIONS:
        params = [{"name": name.strip("{}"), "in": "path", "required": True,
                   "schema": {"type": "string"}}
                  for name in path.split("/") if name.startswith("{")] + list(query)
        success: dict[str, Any] = {"description": summary}
        if response:
            success["content"] = {"application/json": {"schema": _schema_ref(response)}}
        operation: dict[str, Any] = {
            "tags": [tag], "summary": summary,
            "operationId": f"{method}_{path}".replace("/", "_").replace("{", "")
                                             .replace("}", "").replace(".", "_"),
            "parameters": params, "responses": {str(status): success}}
        if path != "/management/openapi.json":
            operation["responses"].update({"400": _error("invalid request"),
                                           "401": _error("no or wrong credentials"),
                                           "403": _error("the user lacks the role"),
                                           "404": _error("unknown id, or not the caller's to see")})
        else:
            operation["security"] = []
        if path != "/management/openapi.json":  # login limits (evgate/security/login.py)
            operation["responses"]["429"] = _error("too many failed logins (Retry-After)")
            operation["responses"]["503"] = _error("too many password checks waiting "
                                                   "(Retry-After)")
        if request:
            optional = request in ("Deploy", "Accept", "Reject")
            operation["requestBody"] = {"required": not optional, "content": {
                "application/json": {"schema": _schema_ref(request)}}}
            operation["responses"]["415"] = _error("Content-Type is not application/json")
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "evgate management API", "version": "1.0",
                 "description": "Gravitee APIM 3.20 V4-compatible management and portal API "
                                "(docs/management-api.md). Trailing slashes are tolerated."},
        "servers": [{"url": "http://127.0.0.1:8083"}],
        "security": [{"basic": []}],
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
                       "schemas": SCHEMAS},
        "paths": paths,
    }

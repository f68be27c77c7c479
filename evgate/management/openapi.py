"""The OpenAPI 3 document of the management API (served at `/management/openapi.json`).

Written as a table, not derived from the routes, so that a test comparing it with Flask's
url_map catches a route added without documentation or a documented path that is not routed.
"""
from __future__ import annotations

from functools import partial
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
    # -- mAPI v2 (Gravitee 4.x shapes, evgate/definition/v4x.py) --
    "ErrorV2": {"type": "object", "required": ["httpStatus", "message"], "properties": {
        "httpStatus": {"type": "integer"}, "message": {"type": "string"},
        "technicalCode": {"type": "string"}, "parameters": _OBJ,
        "details": {"type": "array", "items": {"type": "object", "properties": {
            "message": {"type": "string"},
            "location": {"type": "string", "description": "JSON path of the problem"}}}}}},
    "Page": {"type": "object", "properties": {
        "data": {"type": "array", "items": _OBJ},
        "pagination": {"type": "object", "properties": {
            k: {"type": "integer"} for k in ("page", "perPage", "pageCount", "pageItemsCount",
                                              "totalCount")}},
        "links": {"type": "object", "properties": {
            k: {"type": "string"} for k in ("self", "first", "last", "previous", "next")}}}},
    "ApiV4": {**_OBJ, "description": "A V4 API definition: definitionVersion V4, type MESSAGE "
              "(PROXY is refused), listeners HTTP|SUBSCRIPTION, endpointGroups, flows, "
              "analytics; answered with id, state, deployedAt, createdAt, updatedAt.",
              "required": ["name", "listeners", "endpointGroups"]},
    "ApiSearch": {"type": "object", "properties": {
        "query": {"type": "string"}, "ids": {"type": "array", "items": {"type": "string"}},
        "apiTypes": {"type": "array", "items": {"type": "string"}},
        "statuses": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}}}},
    "ApiExport": {"type": "object", "properties": {"api": {"$ref": "#/components/schemas/ApiV4"},
                                                   "plans": {"type": "array", "items": _OBJ}}},
    "Deployment": {"type": "object", "properties": {
        "apiId": {"type": "string"}, "deploymentLabel": {"type": "string"},
        "deployedAt": {"type": "string"}}},
    "PlanV4": {**_OBJ, "description": "{name, description, mode: STANDARD|PUSH, security: "
               "{type: KEY_LESS|API_KEY|JWT, configuration} (none for PUSH), validation: "
               "AUTO|MANUAL, flows, status: STAGING|PUBLISHED|DEPRECATED|CLOSED}"},
    "SubscriptionV4": {"type": "object", "properties": {
        "id": {"type": "string"}, "api": _OBJ, "plan": _OBJ, "application": _OBJ,
        "status": {"type": "string", "enum": ["PENDING", "ACCEPTED", "REJECTED", "PAUSED",
                                              "CLOSED"]},
        "consumerStatus": {"type": "string", "enum": ["STARTED", "STOPPED", "FAILURE"]},
        "consumerConfiguration": {"type": "object", "properties": {
            "entrypointId": {"type": "string"}, "channel": {"type": "string"},
            "entrypointConfiguration": _OBJ}},
        "metadata": _OBJ, "failureCause": {"type": "string"}}},
    "CreateSubscription": {"type": "object", "required": ["applicationId", "planId"],
                           "properties": {
        "applicationId": {"type": "string"}, "planId": {"type": "string"},
        "customApiKey": {"type": "string"}, "metadata": _OBJ,
        "consumerConfiguration": {"type": "object", "properties": {
            "entrypointId": {"type": "string"}, "channel": {"type": "string"},
            "entrypointConfiguration": _OBJ}}}},
    "UpdateSubscription": {"type": "object", "properties": {
        "consumerConfiguration": _OBJ, "metadata": _OBJ}},
    "AcceptSubscription": {"type": "object", "properties": {
        "reason": {"type": "string"}, "customApiKey": {"type": "string"},
        "startingAt": {"type": "string", "format": "date-time"},
        "endingAt": {"type": "string", "format": "date-time",
                     "description": "the issued key expires then"}}},
    "RejectSubscription": {"type": "object", "properties": {"reason": {"type": "string"}}},
    "TransferSubscription": {"type": "object", "required": ["planId"],
                             "properties": {"planId": {"type": "string"}}},
    "RenewApiKey": {"type": "object", "properties": {"customApiKey": {"type": "string"}}},
    "UpdateApiKey": {"type": "object", "properties": {"expireAt": {
        "type": "string", "format": "date-time", "nullable": True,
        "description": "in the future; absent or null: the key never expires"}}},
    "VerifyApiPaths": {"type": "object", "required": ["paths"], "properties": {
        "apiId": {"type": "string", "description": "the API being edited (its own paths "
                                                   "are free)"},
        "paths": {"type": "array", "items": {"type": "object", "required": ["path"],
                                             "properties": {"path": {"type": "string"}}}}}},
    "VerifySubscription": {"type": "object", "required": ["applicationId", "apiKey"],
                           "properties": {"applicationId": {"type": "string"},
                                          "apiKey": {"type": "string"}}},
    "Verification": {"type": "object", "properties": {"ok": {"type": "boolean"},
                                                      "reason": {"type": "string"}}},
    "ApiKey": {"type": "object", "properties": {
        "id": {"type": "string", "description": "SHA-256 of the key, never the key"},
        "key": {"type": "string"}, "revoked": {"type": "boolean"},
        "expired": {"type": "boolean"}, "expireAt": {"type": "string"},
        "application": _OBJ, "subscriptions": {"type": "array", "items": _OBJ}}},
    "Plugin": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "string"},
        "description": {"type": "string"}}},
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


_PAGE = [_q("page", "page number, from 1"), _q("perPage", "items per page (1-1000, "
                                                         "default 10)")]
#: mAPI v2 operations, relative to each prefix they are served under (resources/v2.py).
V2_OPERATIONS: list[tuple[str, str, str, str, str | None, int, str | None, list]] = [
    ("get", "/apis", "v2 APIs", "List APIs (paged)", None, 200, "Page",
     [_q("q", "text in name, description or id")] + _PAGE),
    ("post", "/apis/_search", "v2 APIs", "Search APIs (paged; any user)", "ApiSearch", 200,
     "Page", _PAGE),
    ("post", "/apis", "v2 APIs", "Create an API (stopped)", "ApiV4", 201, "ApiV4", []),
    ("post", "/apis/_import/definition", "v2 APIs",
     "Create an API with its plans from an export", "ApiExport", 201, "ApiV4", []),
    ("get", "/apis/{api_id}", "v2 APIs", "Read an API", None, 200, "ApiV4", []),
    ("put", "/apis/{api_id}", "v2 APIs", "Update an API", "ApiV4", 200, "ApiV4", []),
    ("delete", "/apis/{api_id}", "v2 APIs", "Delete an API with its plans and subscriptions",
     None, 204, None, []),
    ("post", "/apis/{api_id}/_start", "v2 APIs", "Start an API", None, 204, None, []),
    ("post", "/apis/{api_id}/_stop", "v2 APIs", "Stop an API", None, 204, None, []),
    ("post", "/apis/{api_id}/deployments", "v2 APIs", "Deploy the saved definition",
     "Deploy", 202, "Deployment", []),
    ("get", "/apis/{api_id}/deployments/current", "v2 APIs", "The current deployment", None,
     200, "Deployment", []),
    ("get", "/apis/{api_id}/_export/definition", "v2 APIs",
     "Export an API with its plans (secrets masked)", None, 200, "ApiExport", []),
    ("post", "/apis/_verify/paths", "v2 APIs",
     "Whether listener paths are well formed and free ({ok, reason?})", "VerifyApiPaths", 200,
     "Verification", []),
    ("get", "/apis/{api_id}/plans", "v2 Plans", "List plans (paged)", None, 200, "Page",
     [_q("statuses", "comma separated"), _q("securities", "KEY_LESS, API_KEY, JWT"),
      _q("mode", "STANDARD or PUSH")] + _PAGE),
    ("post", "/apis/{api_id}/plans", "v2 Plans", "Create a plan (STAGING)", "PlanV4", 201,
     "PlanV4", []),
    ("get", "/apis/{api_id}/plans/{plan_id}", "v2 Plans", "Read a plan", None, 200, "PlanV4",
     []),
    ("put", "/apis/{api_id}/plans/{plan_id}", "v2 Plans", "Update a plan", "PlanV4", 200,
     "PlanV4", []),
    ("delete", "/apis/{api_id}/plans/{plan_id}", "v2 Plans", "Delete a staging or closed plan",
     None, 204, None, []),
    ("post", "/apis/{api_id}/plans/{plan_id}/_publish", "v2 Plans", "Publish a plan", None,
     200, "PlanV4", []),
    ("post", "/apis/{api_id}/plans/{plan_id}/_deprecate", "v2 Plans", "Deprecate a plan",
     None, 200, "PlanV4", []),
    ("post", "/apis/{api_id}/plans/{plan_id}/_close", "v2 Plans",
     "Close a plan and its subscriptions", None, 200, "PlanV4", []),
    ("get", "/apis/{api_id}/subscriptions", "v2 Subscriptions", "List subscriptions (paged)",
     None, 200, "Page",
     [_q("applicationIds", "comma separated"), _q("planIds", "comma separated"),
      _q("statuses", "comma separated"), _q("apiKey", "subscriptions holding this key")]
     + _PAGE),
    ("post", "/apis/{api_id}/subscriptions", "v2 Subscriptions",
     "Subscribe an application to a plan", "CreateSubscription", 201, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/_verify", "v2 Subscriptions",
     "Whether a custom API key is free ({ok, reason?})", "VerifySubscription", 200,
     "Verification", []),
    ("get", "/apis/{api_id}/subscribers", "v2 Subscriptions",
     "Applications with a live subscription (paged)", None, 200, "Page",
     [_q("name", "part of the application's name")] + _PAGE),
    ("get", "/apis/{api_id}/subscriptions/{sub_id}", "v2 Subscriptions",
     "Read a subscription", None, 200, "SubscriptionV4", []),
    ("put", "/apis/{api_id}/subscriptions/{sub_id}", "v2 Subscriptions",
     "Update a subscription", "UpdateSubscription", 200, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/_accept", "v2 Subscriptions",
     "Accept a pending subscription", "AcceptSubscription", 200, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/_reject", "v2 Subscriptions",
     "Reject a pending subscription", "RejectSubscription", 200, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/_pause", "v2 Subscriptions",
     "Pause a subscription", None, 200, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/_resume", "v2 Subscriptions",
     "Resume a paused or failed subscription", None, 200, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/_close", "v2 Subscriptions",
     "Close a subscription (revokes its keys)", None, 200, "SubscriptionV4", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/_transfer", "v2 Subscriptions",
     "Move a subscription to another plan of the API", "TransferSubscription", 200,
     "SubscriptionV4", []),
    ("get", "/apis/{api_id}/subscriptions/{sub_id}/api-keys", "v2 API keys",
     "API keys of a subscription (paged)", None, 200, "Page", _PAGE),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/api-keys/_renew", "v2 API keys",
     "Issue a new key, revoking the others", "RenewApiKey", 201, "ApiKey", []),
    ("put", "/apis/{api_id}/subscriptions/{sub_id}/api-keys/{key_id}", "v2 API keys",
     "Set or clear when a key expires", "UpdateApiKey", 200, "ApiKey", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/api-keys/{key_id}/_revoke", "v2 API keys",
     "Revoke a key", None, 200, "ApiKey", []),
    ("post", "/apis/{api_id}/subscriptions/{sub_id}/api-keys/{key_id}/_reactivate",
     "v2 API keys", "Reactivate a key", None, 200, "ApiKey", []),
]
V2_PLUGIN_OPERATIONS: list[tuple[str, str, str, str, str | None, int, str | None, list]] = [
    ("get", "/plugins/{kind}", "v2 Plugins", "List plugins of a kind (entrypoints, "
     "endpoints, policies)", None, 200, "Plugin[]", []),
    ("get", "/plugins/{kind}/{type_}", "v2 Plugins", "Read a plugin", None, 200, "Plugin", []),
    ("get", "/plugins/{kind}/{type_}/schema", "v2 Plugins",
     "JSON schema of a plugin's configuration", None, 200, None, []),
]
_ENV = ("/management/v2/environments/{env_id}",
        "/management/v2/organizations/{org_id}/environments/{env_id}")
_ORG = ("/management/v2", "/management/v2/organizations/{org_id}")
OPERATIONS += [(m, prefix + path, *rest) for prefix in _ENV for m, path, *rest in V2_OPERATIONS]
OPERATIONS += [(m, prefix + path, *rest) for prefix in _ENV + _ORG
               for m, path, *rest in V2_PLUGIN_OPERATIONS]


def _schema_ref(name: str) -> dict[str, Any]:
    if name.endswith("[]"):
        return {"type": "array", "items": {"$ref": f"#/components/schemas/{name[:-2]}"}}
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, tag, summary, request, status, response, query in OPERATIONS:
        error = partial(_error, schema="ErrorV2" if path.startswith("/management/v2") else "Error")
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
            operation["responses"].update({"400": error("invalid request"),
                                           "401": error("no or wrong credentials"),
                                           "403": error("the user lacks the role"),
                                           "404": error("unknown id, or not the caller's to see")})
        else:
            operation["security"] = []
        if path != "/management/openapi.json":  # login limits (evgate/security/login.py)
            operation["responses"]["429"] = error("too many failed logins (Retry-After)")
            operation["responses"]["503"] = error("too many password checks waiting "
                                                  "(Retry-After)")
        if request:
            optional = ("Deploy", "AcceptSubscription", "RejectSubscription", "RenewApiKey",
                        "ApiSearch", "Accept", "Reject")
            operation["requestBody"] = {"required": request not in optional, "content": {
                "application/json": {"schema": _schema_ref(request)}}}
            operation["responses"]["415"] = error("Content-Type is not application/json")
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "evgate management API", "version": "1.0",
                 "description": "Gravitee APIM 3.20 V4-compatible management and portal API "
                                "and Gravitee 4.x's management API v2 (/management/v2) "
                                "(docs/management-api.md). Trailing slashes are tolerated."},
        "servers": [{"url": "http://127.0.0.1:8083"}],
        "security": [{"basic": []}],
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
                       "schemas": SCHEMAS},
        "paths": paths,
    }

"""Subscriptions of applications to plans, and the API keys they carry.

Lifecycle (docs/management-api.md)::

    create --(plan validation auto)----------------> ACCEPTED --pause--> PAUSED --resume--+
       \\--(plan validation manual)--> PENDING --_process accepted--^     ^---------------+
                                        \\--_process refused--> REJECTED
    ACCEPTED/PAUSED/PENDING/FAILURE --close--> CLOSED (keys revoked)
    ACCEPTED/PAUSED --mark_failure (webhook delivery gave up)--> FAILURE --resume--> ACCEPTED

`consumerStatus` (STARTED/STOPPED) is the consumer's own switch from the portal
(`_changeConsumerStatus`); a webhook delivers only while the subscription is ACCEPTED and its
consumer status STARTED. An api-key plan issues a key when the subscription is accepted; the
key is revoked when it is closed. Every change goes through `repo.write()`, so gateways
pick it up on their next sync. Rules are checked before anything is written; rows that change
together (status + key) change in one transaction.

Ownership (evgate/services/principal.py): a USER sees, updates and starts/stops only the
subscriptions of applications it owns (anything else is 404); approving, pausing, resuming and
closing are the publisher's (ADMIN) operations.
"""
from __future__ import annotations

import logging
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

from .. import plugins
from ..definition.v4x import flat_consumer_configuration
from ..errors import BadRequestError, ConflictError, DuplicateError, NotFoundError
from ..repository import Repository
from ..repository._rows import now
from ..security import secret_fields
from .principal import CATALOGUE_PLAN_STATUSES, Principal

logger = logging.getLogger(__name__)

STATUSES = ("PENDING", "ACCEPTED", "REJECTED", "PAUSED", "CLOSED", "FAILURE")
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_.\-]{8,128}$")
#: Longest reason a publisher may give when accepting or rejecting.
MAX_REASON = 1000


class SubscriptionService:
    """Acts as `caller` (see the module docstring for what a USER may do)."""

    def __init__(self, repo: Repository, caller: Principal, *, ssrf_policy: Any = None,
                 renew_grace_s: int | None = None):
        self.repo = repo
        self.caller = caller
        #: How long a renewed subscription's previous keys stay valid (None: from the
        #: environment's settings).
        self.renew_grace_s = renew_grace_s
        #: Webhook callbacks are vetted with it on create and update (None: from the
        #: environment's settings, as the CLI runs).
        self.ssrf_policy = ssrf_policy

    # -- reading -----------------------------------------------------------------------------
    def get(self, sub_id: str, api_id: str | None = None) -> dict[str, Any]:
        return self._entity(self._visible(sub_id, api_id))

    def _visible(self, sub_id: str, api_id: str | None = None) -> dict[str, Any]:
        """The stored subscription, or 404 when it does not exist, belongs to another API than
        `api_id`, or to an application the caller does not own."""
        row = self.repo.subscriptions.get(sub_id)
        if api_id is not None and row["api_id"] != api_id:
            raise NotFoundError("Subscription", sub_id)
        if not self.caller.is_admin and row["application_id"] not in self._owned_applications():
            raise NotFoundError("Subscription", sub_id)
        return row

    def _owned_applications(self) -> set[str]:
        return {a["id"] for a in self.repo.applications.list()
                if self.caller.owns(a["owner"])}

    def list(self, api_id: str | None = None, *, statuses: list[str] | None = None,
             application_id: str | None = None, plan_id: str | None = None
             ) -> list[dict[str, Any]]:
        if api_id is not None:
            self.repo.apis.get(api_id)
        wanted = tuple(s.upper() for s in statuses) if statuses else None
        if wanted:
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise BadRequestError(f"unknown subscription status {bad[0]!r} (one of "
                                      f"{', '.join(STATUSES)})", key="subscription.status.invalid")
        rows = self.repo.subscriptions.list(api_id, wanted, plan_id=plan_id,
                                            application_id=application_id)
        if not self.caller.is_admin:
            owned = self._owned_applications()
            rows = [row for row in rows if row["application_id"] in owned]
        return [self._entity(row) for row in rows]

    # -- creating ----------------------------------------------------------------------------
    def create(self, *, plan_id: str, application_id: str, body: Any = None,
               api_id: str | None = None, api_key: str | None = None) -> dict[str, Any]:
        """Subscribe `application_id` to `plan_id` (of `api_id` when given). Accepted at once
        unless the plan's validation is manual (then PENDING until `process`)."""
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise BadRequestError("a subscription must be a JSON object",
                                  key="subscription.invalid")
        if not plan_id:
            raise BadRequestError("the plan to subscribe to is required",
                                  key="subscription.plan.missing")
        if not application_id:
            raise BadRequestError("the subscribing application is required",
                                  key="subscription.application.missing")
        if not self.caller.owns(self.repo.applications.get(application_id)["owner"]):
            raise NotFoundError("Application", application_id)
        if api_key is not None:
            self.caller.require_admin("choose an API key")
        plan = self.repo.plans.get(plan_id, api_id)
        if not self.caller.is_admin and plan["status"] not in CATALOGUE_PLAN_STATUSES:
            raise NotFoundError("Plan", plan_id)
        api_id = plan["apiId"]
        api = self.repo.apis.get(api_id)
        security = plan["security"]["type"]
        if security == "key-less":
            raise BadRequestError(f"plan {plan_id} is key-less: key-less plans take no "
                                  "subscriptions", key="plan.security.keyless")
        if plan["status"] != "published":
            raise BadRequestError(f"plan {plan_id} is {plan['status']}: only published plans "
                                  "take new subscriptions", key="plan.not.published")
        # "****" has no stored secret to keep on create: 400 (as for Kafka secrets).
        body = {**body, "configuration": _restored(
            flat_consumer_configuration(body.get("configuration")), None)}
        configuration, metadata = self._checked_payload(body, plan, api["definition"])
        self._refuse_second_live(application_id, plan_id)
        if api_key is not None:
            self._check_custom_key(api_key)
        status = "PENDING" if plan.get("validation") == "manual" else "ACCEPTED"
        sub_id = str(uuid.uuid4())
        with self.repo.write() as conn:
            self.repo.subscriptions.insert({
                "id": sub_id, "api_id": api_id, "plan_id": plan_id,
                "application_id": application_id, "status": status,
                "configuration": configuration, "metadata": metadata}, conn)
            if status == "ACCEPTED" and security == "api-key":
                self._issue_key(sub_id, application_id, api_id, api_key, conn)
        logger.info("subscription %s: application %s -> plan %s of API %s (%s)", sub_id,
                    application_id, plan_id, api_id, status)
        return self.get(sub_id)

    # -- transitions -------------------------------------------------------------------------
    def accept(self, api_id: str | None, sub_id: str, *, custom_key: Any = None,
               ending_at: Any = None, starting_at: Any = None,
               reason: Any = None) -> dict[str, Any]:
        """mAPI v2 `_accept`: approve a PENDING subscription (an ACCEPTED one: no-op), with an
        optional custom key, an end date for the key it issues and a reason."""
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("approve subscriptions")
        _when(starting_at, "$.startingAt")
        expire_at = _when(ending_at, "$.endingAt")
        return self._decide(sub, True, custom_key, expire_at, _reason(reason))

    def reject(self, api_id: str | None, sub_id: str, *, reason: Any = None) -> dict[str, Any]:
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("reject subscriptions")
        reason = _reason(reason)
        if sub["status"] == "REJECTED":
            return self.get(sub_id)
        return self._decide(sub, False, None, None, reason)

    def transfer(self, api_id: str | None, sub_id: str, plan_id: Any) -> dict[str, Any]:
        """Move a live subscription to another published plan of the same API with the same
        security (its keys stay valid)."""
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("transfer subscriptions")
        if not isinstance(plan_id, str) or not plan_id:
            raise BadRequestError("$.planId: the plan to transfer to is required",
                                  key="subscription.transfer.invalid")
        if sub["status"] in ("CLOSED", "REJECTED"):
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}",
                                  key="subscription.closed")
        current = self.repo.plans.get(sub["plan_id"])
        target = self.repo.plans.get(plan_id, sub["api_id"])
        if target["status"] != "published":
            raise BadRequestError(f"$.planId: plan {plan_id} is {target['status']}: only "
                                  "published plans take subscriptions", key="plan.not.published")
        if target["security"]["type"] != current["security"]["type"]:
            raise BadRequestError(f"$.planId: plan {plan_id} is {target['security']['type']}, "
                                  f"the subscription's plan {current['security']['type']}",
                                  key="subscription.transfer.security")
        if plan_id == sub["plan_id"]:
            raise BadRequestError(f"$.planId: subscription {sub_id} is already on plan "
                                  f"{plan_id}", key="subscription.transfer.same.plan")
        self._refuse_second_live(sub["application_id"], plan_id)
        self.repo.subscriptions.update(sub_id, plan_id=plan_id)
        logger.info("subscription %s transferred to plan %s", sub_id, plan_id)
        return self.get(sub_id)

    def _refuse_second_live(self, application_id: str, plan_id: str) -> None:
        """Refused when the application already has a live subscription to the plan: one
        application holds at most one per plan (on create and on transfer alike)."""
        for other in self.repo.subscriptions.list(plan_id=plan_id,
                                                  application_id=application_id):
            if other["status"] in ("PENDING", "ACCEPTED", "PAUSED", "FAILURE"):
                raise ConflictError(f"application {application_id} already has subscription "
                                    f"{other['id']} to plan {plan_id}", key="subscription.exists")

    # -- API keys of a subscription ----------------------------------------------------------
    def api_keys(self, api_id: str | None, sub_id: str) -> list[dict[str, Any]]:
        """The keys of a subscription the caller may see (the owner sees its own keys)."""
        sub = self._visible(sub_id, api_id)
        return [_key_entity(k, sub) for k in self.repo.api_keys.for_subscription(sub_id)]

    def renew_key(self, api_id: str | None, sub_id: str, custom_key: Any = None
                  ) -> dict[str, Any]:
        """Issue a new key; the others expire after EVGATE_API_KEY_RENEW_GRACE_S (two hours,
        as in Gravitee, so that clients can switch without an outage; 0: revoked at once),
        in one transaction."""
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("renew API keys")
        if sub["status"] != "ACCEPTED":
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}, not ACCEPTED",
                                  key="subscription.not.accepted")
        plan = self.repo.plans.get(sub["plan_id"])
        if plan["security"]["type"] != "api-key":
            raise BadRequestError(f"plan {plan['id']} is not an api-key plan",
                                  key="plan.security.not.apikey")
        if custom_key is not None:
            self._check_custom_key(custom_key)
        key = custom_key or secrets.token_urlsafe(24)
        grace = self.renew_grace_s
        if grace is None:
            from ..config import Config
            grace = Config.from_env().api_key_renew_grace_s
        with self.repo.write() as conn:
            if grace:
                self.repo.api_keys.expire_for_subscription(
                    sub_id, now() + timedelta(seconds=grace), conn)
            else:
                self.repo.api_keys.revoke_for_subscription(sub_id, conn)
            self.repo.api_keys.insert(key, subscription_id=sub_id,
                                      application_id=sub["application_id"],
                                      api_id=sub["api_id"], conn=conn)
        logger.info("subscription %s: API key renewed", sub_id)
        found = self.repo.api_keys.find(key)
        return _key_entity(found, sub)

    def set_key_revoked(self, api_id: str | None, sub_id: str, key_id: str,
                        revoked: bool) -> dict[str, Any]:
        """Revoke or reactivate one key (its id is the key's SHA-256, never the key)."""
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("revoke or reactivate API keys")
        if not revoked and sub["status"] != "ACCEPTED":
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}: its keys cannot "
                                  "be reactivated", key="subscription.not.accepted")
        if not self.repo.api_keys.set_revoked(sub_id, key_id, revoked):
            raise NotFoundError("ApiKey", key_id)
        logger.info("subscription %s: API key %s", sub_id, "revoked" if revoked else
                    "reactivated")
        for key in self.repo.api_keys.for_subscription(sub_id):
            if key["key_hash"] == key_id:
                return _key_entity(key, sub)
        raise NotFoundError("ApiKey", key_id)

    def set_key_expiry(self, api_id: str | None, sub_id: str, key_id: str,
                       expire_at: Any) -> dict[str, Any]:
        """Set (None: clear) when one key expires; a date already past, or a revoked key, is a
        400 (revoke or renew instead)."""
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("change when API keys expire")
        when = _when(expire_at, "$.expireAt")
        if when is not None and when <= now():
            raise BadRequestError("$.expireAt: must be in the future (to end a key now, "
                                  "revoke it)", key="apikey.expireAt.invalid")
        key = next((k for k in self.repo.api_keys.for_subscription(sub_id)
                    if k["key_hash"] == key_id), None)
        if key is None:
            raise NotFoundError("ApiKey", key_id)
        if key["revoked"]:
            raise BadRequestError(f"API key {key_id} is revoked: reactivate it first",
                                  key="apikey.revoked")
        self.repo.api_keys.set_expire_at(sub_id, key_id, when)
        logger.info("subscription %s: API key %s expires %s", sub_id, key_id,
                    when.isoformat() if when else "never")
        key["expire_at"] = when
        return _key_entity(key, sub)

    def verify_custom_key(self, api_id: str, application_id: Any, key: Any) -> dict[str, Any]:
        """Whether `key` may be given to a new subscription of `application_id` to `api_id`:
        {"ok": true}, or {"ok": false, "reason"} when another subscription has it. A key of
        the wrong form is a 400, as it would be on subscribing."""
        self.caller.require_admin("choose an API key")
        for name, value in (("applicationId", application_id), ("apiKey", key)):
            if not isinstance(value, str) or not value:
                raise BadRequestError(f"$.{name}: is required (a string)",
                                      key="subscription.invalid")
        if not _CUSTOM_KEY.match(key):
            raise BadRequestError("$.apiKey: a custom API key must be 8-128 characters of "
                                  "letters, digits, '.', '_' or '-'", key="apikey.invalid")
        self.repo.apis.get(api_id)
        self.repo.applications.get(application_id)
        try:
            self._check_custom_key(key)
        except DuplicateError as exc:
            return {"ok": False, "reason": str(exc)}
        return {"ok": True}

    def subscribers(self, api_id: str, name: Any = None) -> list[dict[str, Any]]:
        """The applications with a live (pending, accepted, paused or failed) subscription to
        `api_id` that the caller may see, by name; `name` keeps those whose name contains
        it (case-insensitive)."""
        self.repo.apis.get(api_id)
        live = [row["application_id"] for row in self.repo.subscriptions.list(
            api_id, ("PENDING", "ACCEPTED", "PAUSED", "FAILURE"))]
        wanted = name.lower() if isinstance(name, str) and name else None
        found = []
        for app_id in dict.fromkeys(live):
            try:
                app = self.repo.applications.get(app_id)
            except NotFoundError:
                continue
            if not self.caller.owns(app["owner"]):
                continue
            if wanted and wanted not in (app["name"] or "").lower():
                continue
            found.append(app)
        return sorted(found, key=lambda app: ((app["name"] or "").lower(), app["id"]))

    def process(self, api_id: str, sub_id: str, body: Any) -> dict[str, Any]:
        """Approve or reject a PENDING subscription (`{"accepted": bool, "reason"?,
        "customApiKey"?}`); the reason, who and when are kept (`publisherMessage`,
        `processedBy`, `processedAt`) so the consumer learns why. Approving an already
        ACCEPTED one is a no-op (the Postman approval workflow approves twice)."""
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("approve or reject subscriptions")
        if not isinstance(body, dict) or not isinstance(body.get("accepted"), bool):
            raise BadRequestError('the body must be {"accepted": true|false}',
                                  key="subscription.process.invalid")
        reason = _reason(body.get("reason"))
        return self._decide(sub, body["accepted"], body.get("customApiKey"), None, reason)

    def _decide(self, sub: dict[str, Any], accepted: bool, custom_key: Any,
                expire_at: Any, reason: str | None = None) -> dict[str, Any]:
        sub_id = sub["id"]
        if sub["status"] == "ACCEPTED" and accepted:
            return self.get(sub_id)
        if sub["status"] != "PENDING":
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}, not PENDING",
                                  key="subscription.not.pending")
        if custom_key is not None:
            self._check_custom_key(custom_key)
        plan = self.repo.plans.get(sub["plan_id"])
        with self.repo.write() as conn:
            self.repo.subscriptions.update(sub_id, conn,
                                           status="ACCEPTED" if accepted else "REJECTED",
                                           processed_at=now(),
                                           processed_by=self.caller.username,
                                           publisher_message=reason)
            if accepted and plan["security"]["type"] == "api-key":
                self._issue_key(sub_id, sub["application_id"], sub["api_id"], custom_key, conn,
                                expire_at)
        logger.info("subscription %s %s by %s", sub_id, "accepted" if accepted else "rejected",
                    self.caller.username)
        return self.get(sub_id)

    def change_status(self, api_id: str | None, sub_id: str, status: Any) -> dict[str, Any]:
        """The publisher's switch: PAUSED, RESUMED (back to ACCEPTED) or CLOSED."""
        target = str(status or "").strip().upper()
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("pause, resume or close subscriptions")
        current = sub["status"]
        if target == "CLOSED":
            return self.close(sub["api_id"], sub_id)
        allowed = {"PAUSED": ("ACCEPTED",), "RESUMED": ("PAUSED", "FAILURE")}
        if target not in allowed:
            raise BadRequestError("status must be PAUSED, RESUMED or CLOSED",
                                  key="subscription.status.invalid")
        if current not in allowed[target]:
            raise BadRequestError(f"subscription {sub_id} is {current}; it cannot be "
                                  f"{target.lower()}", key="subscription.status.transition")
        if target == "PAUSED":
            self.repo.subscriptions.update(sub_id, status="PAUSED")
        else:
            self.repo.subscriptions.update(sub_id, status="ACCEPTED", failure_cause=None)
        logger.info("subscription %s: %s -> %s", sub_id, current, target)
        return self.get(sub_id)

    def close(self, api_id: str | None, sub_id: str) -> dict[str, Any]:
        sub = self._visible(sub_id, api_id)
        self.caller.require_admin("close subscriptions")
        if sub["status"] in ("CLOSED", "REJECTED"):
            raise BadRequestError(f"subscription {sub_id} is already {sub['status']}",
                                  key="subscription.closed")
        with self.repo.write() as conn:
            self.repo.subscriptions.update(sub_id, conn, status="CLOSED")
            self.repo.api_keys.revoke_for_subscription(sub_id, conn)
        logger.info("subscription %s closed", sub_id)
        return self.get(sub_id)

    def change_consumer_status(self, sub_id: str, status: Any) -> dict[str, Any]:
        """The consumer's own switch (portal `_changeConsumerStatus`): STARTED or STOPPED."""
        target = str(status or "").strip().upper()
        sub = self._visible(sub_id)
        if target not in ("STARTED", "STOPPED"):
            raise BadRequestError("status must be STARTED or STOPPED",
                                  key="subscription.consumer.status.invalid")
        if sub["status"] in ("CLOSED", "REJECTED"):
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}",
                                  key="subscription.closed")
        self.repo.subscriptions.update(sub_id, consumer_status=target)
        return self.get(sub_id)

    def update(self, sub_id: str, body: Any, *, api_id: str | None = None,
               by_consumer: bool = False) -> dict[str, Any]:
        """Replace configuration and/or metadata. A consumer's change to a subscription of a
        manual-validation plan goes back to PENDING (the publisher approves it again); any
        change by a USER is a consumer's change."""
        sub = self._visible(sub_id, api_id)
        by_consumer = by_consumer or not self.caller.is_admin
        if not isinstance(body, dict):
            raise BadRequestError("a subscription update must be a JSON object",
                                  key="subscription.invalid")
        if sub["status"] in ("CLOSED", "REJECTED"):
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}",
                                  key="subscription.closed")
        plan = self.repo.plans.get(sub["plan_id"])
        api = self.repo.apis.get(sub["api_id"])
        # Responses mask webhook secrets; "****" sent back keeps the stored one.
        merged = {"configuration": _restored(flat_consumer_configuration(
                      body.get("configuration", sub["configuration"])), sub["configuration"]),
                  "metadata": body.get("metadata", sub["metadata"])}
        configuration, metadata = self._checked_payload(merged, plan, api["definition"])
        values: dict[str, Any] = {"configuration": configuration, "metadata": metadata}
        if by_consumer and plan.get("validation") == "manual" and sub["status"] == "ACCEPTED" \
                and configuration != sub["configuration"]:
            values["status"] = "PENDING"
        self.repo.subscriptions.update(sub_id, **values)
        return self.get(sub_id)

    def mark_failure(self, sub_id: str, reason: str) -> dict[str, Any]:
        """Set FAILURE with its cause (the webhook dispatcher calls this when it gives up).
        Resuming the subscription (status RESUMED) clears it."""
        sub = self._visible(sub_id)
        self.caller.require_admin("mark subscriptions failed")
        if not self.repo.subscriptions.mark_failure(sub_id, reason):
            raise BadRequestError(f"subscription {sub_id} is {sub['status']}",
                                  key="subscription.status.transition")
        logger.warning("subscription %s marked FAILURE: %s", sub_id, reason)
        return self.get(sub_id)

    # -- helpers -----------------------------------------------------------------------------
    def _checked_payload(self, body: dict[str, Any], plan: dict[str, Any],
                         api_definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        configuration = body.get("configuration")
        metadata = body.get("metadata")
        if configuration is None:
            configuration = {}
        if metadata is None:
            metadata = {}
        if not isinstance(configuration, dict):
            raise BadRequestError("$.configuration: must be an object",
                                  key="subscription.configuration.invalid")
        if not isinstance(metadata, dict):
            raise BadRequestError("$.metadata: must be an object of strings",
                                  key="subscription.metadata.invalid")
        push = plan["security"]["type"] == "subscription"
        if (push or configuration) and not configuration.get("entrypointId"):
            raise BadRequestError("$.configuration.entrypointId is required",
                                  key="subscription.entrypoint.missing")
        if push:
            entrypoint_id = configuration["entrypointId"]
            offered = [e.get("type") for listener in api_definition.get("listeners") or []
                       if str(listener.get("type", "")).lower() == "subscription"
                       for e in listener.get("entrypoints") or []]
            if entrypoint_id not in offered:
                raise BadRequestError(
                    f"$.configuration.entrypointId: API has no subscription entrypoint "
                    f"{entrypoint_id!r} (offers: {', '.join(map(str, offered)) or 'none'})",
                    key="subscription.entrypoint.invalid")
            problems = _entrypoint_problems(entrypoint_id, configuration)
            if problems:
                raise BadRequestError("; ".join(f"$.configuration{sub}: {msg}"
                                                for sub, msg in problems),
                                      key="subscription.configuration.invalid")
        _check_callback(configuration, self.ssrf_policy)
        return configuration, metadata

    def _check_custom_key(self, key: Any) -> None:
        if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
            raise BadRequestError("a custom API key must be 8-128 characters of letters, "
                                  "digits, '.', '_' or '-'", key="apikey.invalid")
        if self.repo.api_keys.find(key) is not None:
            raise DuplicateError("this API key is already in use", key="apikey.exists")

    def _issue_key(self, sub_id: str, application_id: str, api_id: str, key: str | None,
                   conn: Any, expire_at: Any = None) -> None:
        self.repo.api_keys.insert(key or secrets.token_urlsafe(24), subscription_id=sub_id,
                                  application_id=application_id, api_id=api_id,
                                  expire_at=expire_at, conn=conn)

    def _entity(self, row: dict[str, Any]) -> dict[str, Any]:
        keys = self.repo.api_keys.for_subscription(row["id"])
        return {
            "id": row["id"], "api": row["api_id"], "plan": row["plan_id"],
            "application": row["application_id"], "status": row["status"],
            "consumerStatus": row["consumer_status"],
            "configuration": secret_fields.mask(row["configuration"],
                                                secret_fields.subscription_configuration),
            "metadata": row["metadata"], "failureCause": row["failure_cause"],
            "createdAt": row["created_at"].isoformat(), "updatedAt": row["updated_at"].isoformat(),
            "publisherMessage": row["publisher_message"],
            "processedAt": _iso(row["processed_at"]),
            # An administrator's account name is half a credential: only ADMINs see it.
            "processedBy": ({"id": row["processed_by"], "displayName": row["processed_by"]}
                            if row["processed_by"] and self.caller.is_admin else None),
            "lastDeliveryAt": _iso(row["last_delivery_at"]),
            "keys": [{"key": k["key"], "revoked": bool(k["revoked"]),
                      "expireAt": k["expire_at"].isoformat() if k["expire_at"] else None,
                      "createdAt": k["created_at"].isoformat()} for k in keys],
        }


def _when(value: Any, path: str) -> Any:
    """An ISO-8601 date-time (with its zone) from a body, or None; 400 naming `path`."""
    if value is None:
        return None
    from datetime import datetime
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise BadRequestError(f"{path}: must be an ISO-8601 date-time with a zone, such as "
                              "2030-01-31T12:00:00Z", key="subscription.date.invalid")
    return when


def _key_entity(key: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    from ..repository._rows import now
    expire_at = key.get("expire_at")
    if expire_at is not None and expire_at.tzinfo is None:
        from datetime import timezone
        expire_at = expire_at.replace(tzinfo=timezone.utc)
    return {"id": key["key_hash"], "key": key["key"], "revoked": bool(key["revoked"]),
            "expired": bool(expire_at and expire_at <= now()),
            "expireAt": expire_at.isoformat() if expire_at else None,
            "createdAt": key["created_at"].isoformat(),
            "application": {"id": sub["application_id"]},
            "subscriptions": [{"id": sub["id"]}]}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _reason(value: Any) -> str | None:
    """The publisher's optional reason: a string of at most MAX_REASON characters without
    control characters (blank is none); anything else is a 400 naming $.reason."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError("$.reason: must be a string", key="subscription.reason.invalid")
    value = value.strip()
    if len(value) > MAX_REASON:
        raise BadRequestError(f"$.reason: at most {MAX_REASON} characters ({len(value)} given)",
                              key="subscription.reason.invalid")
    bad = next((c for c in value if (ord(c) < 32 and c not in "\n\t") or ord(c) == 127), None)
    if bad is not None:
        raise BadRequestError(f"$.reason: control character U+{ord(bad):04X} not allowed",
                              key="subscription.reason.invalid")
    return value or None


def _restored(configuration: Any, stored: Any) -> Any:
    """`configuration` with each "****" replaced by the secret stored at the same place;
    400 naming the field where nothing is stored."""
    restored, problems = secret_fields.restore(configuration, stored,
                                               secret_fields.subscription_configuration)
    if problems:
        raise BadRequestError("; ".join(f"{p['path']}: {p['message']}" for p in problems),
                              key="subscription.configuration.invalid")
    return restored


def _entrypoint_problems(entrypoint_type: str, configuration: dict[str, Any]
                         ) -> list[tuple[str, str]]:
    """An entrypoint class may check subscription configurations it will run with
    (`validate_subscription_configuration(configuration)` -> (sub-path, message) pairs)."""
    if not plugins.is_known("entrypoints", entrypoint_type):
        return []
    cls = plugins.load("entrypoints", entrypoint_type)
    check = getattr(cls, "validate_subscription_configuration", None)
    return list(check(configuration)) if check else []


def _check_callback(configuration: dict[str, Any], policy: Any) -> None:
    """The webhook SSRF policy at subscription time (400 naming $.configuration.callbackUrl)."""
    from ..entrypoints.webhook.ssrf import SsrfPolicy
    from ..entrypoints.webhook.target import check_subscription_callback
    if policy is None:
        from ..config import Config
        policy = SsrfPolicy.from_config(Config.from_env())
    check_subscription_callback(configuration, policy)

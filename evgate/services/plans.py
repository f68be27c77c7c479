"""Plans of an API: create, update, publish, deprecate, close, delete.

Rules: the security type must be one the gateway enforces (key-less, api-key, jwt,
subscription) and its configuration valid (each handler checks its own); a plan is created
`staging` (Gravitee's default) and must be published to admit traffic or take subscriptions;
staging -> published -> deprecated -> closed, and closing a plan closes its subscriptions and
revokes their API keys in the same transaction. A USER sees only published and deprecated
plans, without their security configuration; only an ADMIN changes plans
(evgate/services/principal.py).
"""
from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from ..definition import parse_plan
from ..definition.validate import flow_problems
from ..errors import BadRequestError, ConflictError, DefinitionError, NotFoundError
from ..repository import Repository
from ..repository._rows import now
from ..security import secret_fields
from ..security.plans import HANDLERS
from .principal import Principal, visible_plans

logger = logging.getLogger(__name__)

_READ_ONLY = ("id", "apiId", "api", "status", "createdAt", "updatedAt", "publishedAt",
              "closedAt", "deprecatedAt")


def validated_plan(body: Any, *, path: str = "$") -> tuple[dict[str, Any], Any]:
    """(normalised raw plan, parsed PlanDefinition) or DefinitionError with every problem."""
    if not isinstance(body, dict):
        raise DefinitionError([{"path": path, "message": "a plan must be a JSON object"}])
    plan = parse_plan(body, path=path)
    problems: list[dict[str, str]] = []
    handler = HANDLERS.get(plan.security.type)
    if handler is None:
        problems.append({"path": f"{path}.security.type",
                         "message": f"plan security {plan.security.type!r} is not supported by "
                                    f"evgate (supported: {', '.join(sorted(HANDLERS))})"})
    else:
        check = getattr(handler, "validate_configuration", None)
        for sub, message in (check(plan.security.configuration) if check else ()):
            problems.append({"path": f"{path}.security.configuration{sub}", "message": message})
    for index, flow in enumerate(plan.flows):
        problems += flow_problems(flow, f"{path}.flows[{index}]")
    if problems:
        raise DefinitionError(problems)
    raw = copy.deepcopy(body)
    raw.update(name=plan.name, validation=plan.validation,
               security={"type": plan.security.type,
                         "configuration": plan.security.configuration})
    return raw, plan


def masked(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan as responses show it: a jwt HMAC secret as ****."""
    return secret_fields.mask(plan, secret_fields.plan)


def restored(body: Any, stored: Any, *, path: str = "$") -> Any:
    """`body` with a "****" secret replaced by the stored one; 400 where none is stored."""
    if not isinstance(body, dict):
        return body
    result, problems = secret_fields.restore(body, stored, secret_fields.plan)
    if problems:
        raise DefinitionError([{**p, "path": path + p["path"][1:]} for p in problems])
    return result


class PlanService:
    def __init__(self, repo: Repository, caller: Principal):
        self.repo = repo
        self.caller = caller

    def list(self, api_id: str, status: str | None = None) -> list[dict[str, Any]]:
        self.repo.apis.get(api_id)
        plans = visible_plans(self.caller, self.repo.plans.list_for_api(api_id))
        if status:
            wanted = {s.strip().lower() for s in status.split(",")}
            plans = [p for p in plans if p["status"] in wanted]
        return [masked(p) for p in plans]

    def get(self, api_id: str, plan_id: str) -> dict[str, Any]:
        return masked(self._stored(api_id, plan_id))

    def _stored(self, api_id: str, plan_id: str) -> dict[str, Any]:
        self.repo.apis.get(api_id)
        shown = visible_plans(self.caller, [self.repo.plans.get(plan_id, api_id)])
        if not shown:
            raise NotFoundError("Plan", plan_id)
        return shown[0]

    def create(self, api_id: str, body: Any) -> dict[str, Any]:
        self.caller.require_admin("create plans")
        self.repo.apis.get(api_id)
        raw, plan = validated_plan(restored(body, None))
        for key in _READ_ONLY:
            raw.pop(key, None)
        raw.update(id=str(uuid.uuid4()), apiId=api_id, status=plan.status)
        if plan.status == "closed":
            raise BadRequestError("a plan cannot be created closed", key="plan.status.invalid")
        self.repo.plans.insert(raw)
        logger.info("created %s plan %s on API %s", plan.security.type, raw["id"], api_id)
        return masked(self.repo.plans.get(raw["id"]))

    def update(self, api_id: str, plan_id: str, body: Any) -> dict[str, Any]:
        current = self._stored(api_id, plan_id)
        self.caller.require_admin("update plans")
        if current["status"] == "closed":
            raise ConflictError(f"plan {plan_id} is closed", key="plan.closed")
        raw, plan = validated_plan(restored(body, current))
        if plan.security.type != current["security"]["type"]:
            raise BadRequestError("the security type of a plan cannot change",
                                  key="plan.security.immutable")
        for key in _READ_ONLY:
            raw.pop(key, None)
        raw.update(id=plan_id, apiId=api_id, status=current["status"])
        for stamp in ("publishedAt", "deprecatedAt"):
            if current.get(stamp):
                raw[stamp] = current[stamp]
        self.repo.plans.update(raw)
        return masked(self.repo.plans.get(plan_id))

    def publish(self, api_id: str, plan_id: str) -> dict[str, Any]:
        return self._transition(api_id, plan_id, ("staging",), "published", "publishedAt")

    def deprecate(self, api_id: str, plan_id: str) -> dict[str, Any]:
        return self._transition(api_id, plan_id, ("published",), "deprecated", "deprecatedAt")

    def close(self, api_id: str, plan_id: str) -> dict[str, Any]:
        return self._transition(api_id, plan_id, ("staging", "published", "deprecated"),
                                "closed", "closedAt")

    def delete(self, api_id: str, plan_id: str) -> None:
        plan = self.get(api_id, plan_id)
        self.caller.require_admin("delete plans")
        if plan["status"] not in ("staging", "closed"):
            raise ConflictError(f"plan {plan_id} is {plan['status']}: close it before deleting",
                                key="plan.delete.not.closed")
        open_subs = self._open_subscriptions(plan_id)
        with self.repo.write() as conn:
            self._close_subscriptions(open_subs, conn)
            self.repo.plans.delete(plan_id, conn)

    def _transition(self, api_id: str, plan_id: str, allowed: tuple[str, ...], target: str,
                    stamp: str) -> dict[str, Any]:
        plan = self._stored(api_id, plan_id)
        self.caller.require_admin(f"make plans {target}")
        if plan["status"] not in allowed:
            raise ConflictError(f"plan {plan_id} is {plan['status']}; it cannot become {target}",
                                key=f"plan.not.{allowed[0] if len(allowed) == 1 else 'open'}")
        plan = {k: v for k, v in plan.items() if k not in ("createdAt", "updatedAt")}
        plan.update(status=target, **{stamp: now().isoformat()})
        open_subs = self._open_subscriptions(plan_id) if target == "closed" else []
        with self.repo.write() as conn:
            self.repo.plans.update(plan, conn)
            self._close_subscriptions(open_subs, conn)
        logger.info("plan %s of API %s is now %s", plan_id, api_id, target)
        return masked(self.repo.plans.get(plan_id))

    def _open_subscriptions(self, plan_id: str) -> list[dict[str, Any]]:
        return [s for s in self.repo.subscriptions.list(plan_id=plan_id)
                if s["status"] != "CLOSED"]

    def _close_subscriptions(self, subs: list[dict[str, Any]], conn: Any) -> None:
        for sub in subs:
            self.repo.subscriptions.update(sub["id"], conn, status="CLOSED")
            self.repo.api_keys.revoke_for_subscription(sub["id"], conn)

"""Plan security at request time.

Each published plan of an API gets a handler by security type. Handlers whose credentials the
request carries are tried first (api-key, jwt), key-less last; a request that carries
credentials for a plan but fails them is refused (401), never downgraded to key-less. No plan
admits the request: 401 with a JSON body (Gravitee's behaviour for an API without a usable plan).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import UnauthorizedError
from .api_key import ApiKeyPlan
from .handler import PlanHandler
from .jwt_plan import JwtPlan

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)


class KeylessPlan(PlanHandler):
    type = "key-less"


class PushPlan(PlanHandler):
    """subscription (push) plans: used by webhook subscriptions, not by HTTP requests."""

    type = "subscription"
    serves_requests = False


HANDLERS: dict[str, type[PlanHandler]] = {
    "key-less": KeylessPlan,
    "subscription": PushPlan,
    "api-key": ApiKeyPlan,
    "jwt": JwtPlan,
}


def build_handlers(plans: list[dict[str, Any]], api: Any) -> list[PlanHandler]:
    """Handlers for the published (and deprecated: existing consumers keep access) plans."""
    handlers = []
    for plan in plans:
        if plan.get("status") not in ("published", "deprecated"):
            continue
        kind = (plan.get("security") or {}).get("type")
        cls = HANDLERS.get(kind)
        if cls is None:
            logger.warning("API %s: plan %s has unsupported security type %r; ignored",
                           api.id, plan.get("id"), kind)
            continue
        handlers.append(cls(plan, api))
    return handlers


def admit(handlers: list[PlanHandler], ctx: "ExecutionContext") -> None:
    candidates = [h for h in handlers if h.serves_requests]
    with_credentials = [h for h in candidates if h.has_credentials(ctx)]
    if with_credentials:
        last_error: UnauthorizedError | None = None
        for handler in with_credentials:
            try:
                handler.authenticate(ctx)
                return
            except UnauthorizedError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error
    for handler in candidates:
        if handler.type == "key-less":
            handler.authenticate(ctx)
            return
    raise UnauthorizedError("Unauthorized", key="GATEWAY_PLAN_UNRESOLVABLE")

"""The plan handler base class: one per security type (key-less, api-key, jwt, push).

Its own module so that the handlers with credentials (api_key.py, jwt_plan.py) and the table
that picks one per plan (plans.py) import it without importing each other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar


if TYPE_CHECKING:
    from ..core.context import ExecutionContext


class PlanHandler:
    type: ClassVar[str] = ""
    #: Plans used by HTTP requests; push (webhook) plans are used by subscriptions instead.
    serves_requests: ClassVar[bool] = True

    def __init__(self, plan: dict[str, Any], api: Any):
        self.plan = plan
        self.id = plan["id"]
        self.api = api
        self.configuration = (plan.get("security") or {}).get("configuration") or {}

    def has_credentials(self, ctx: "ExecutionContext") -> bool:
        return False

    def authenticate(self, ctx: "ExecutionContext") -> None:
        """Admit the request (set ctx.plan etc.) or raise UnauthorizedError."""
        ctx.plan = self.plan

"""Who is calling a service, and what that caller may see and do.

Ownership is checked here, in the services, so that the management API, the portal, the CLI
and any later front end apply the same rules (docs/management-api.md, "Ownership"):

- ADMIN administers everything.
- USER sees only the applications it owns, their subscriptions and their API keys (lists are
  filtered); anything else it asks for by id is "not found" (404), never "forbidden", so that
  ids cannot be probed. It reads the API catalogue: APIs and their published or deprecated
  plans, without the plans' security configuration (a jwt plan's HMAC secret lives there).
- The CLI acts on the local database as `LOCAL_OPERATOR`, an ADMIN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ForbiddenError

#: Plan statuses a USER may see (the catalogue): drafts and closed plans stay hidden.
CATALOGUE_PLAN_STATUSES = ("published", "deprecated")


@dataclass(frozen=True)
class Principal:
    username: str
    roles: frozenset[str]

    @classmethod
    def from_user(cls, user: dict[str, Any]) -> "Principal":
        """From an authenticated user as `UserService.authenticate` returns it."""
        return cls(str(user["username"]), frozenset(user.get("roles") or ()))

    @property
    def is_admin(self) -> bool:
        return "ADMIN" in self.roles

    def owns(self, owner: str | None) -> bool:
        """True when this caller may see and use what `owner` owns."""
        return self.is_admin or (bool(self.username) and owner == self.username)

    def require_admin(self, what: str) -> None:
        """Publisher-side operations (APIs, plans, approvals, pause/close): ADMIN only."""
        if not self.is_admin:
            raise ForbiddenError(f"user {self.username} may not {what} (ADMIN role required)",
                                 key="auth.forbidden")


#: The `evgate` command line: whoever can run it can open the database, so it acts as ADMIN.
LOCAL_OPERATOR = Principal("cli", frozenset({"ADMIN"}))
#: Sees nothing and may do nothing: what services act as before a caller is bound.
NOBODY = Principal("", frozenset())


def public_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan as the catalogue shows it to a USER: its security type, not its configuration."""
    shown = dict(plan)
    security = plan.get("security") or {}
    shown["security"] = {"type": security.get("type")}
    return shown


def visible_plans(caller: Principal, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if caller.is_admin:
        return plans
    return [public_plan(p) for p in plans if p.get("status") in CATALOGUE_PLAN_STATUSES]

"""REST resources, one module per entity; each is a thin layer over evgate.services."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, g

#: Prefix of Gravitee 3.20's management API for the default organization and environment.
MANAGEMENT = "/management/organizations/DEFAULT/environments/DEFAULT"
#: Prefix of the consumer-side portal API.
PORTAL = "/portal/environments/DEFAULT"


@dataclass
class Services:
    """The services acting as one caller. The app keeps one bound to NOBODY (it sees
    nothing); each request gets its own, bound to the authenticated user."""
    apis: Any
    plans: Any
    applications: Any
    subscriptions: Any
    users: Any
    repo: Any = None
    ssrf_policy: Any = None
    renew_grace_s: int | None = None

    @classmethod
    def for_repository(cls, repo: Any, caller: Any = None, users: Any = None,
                       ssrf_policy: Any = None, renew_grace_s: int | None = None
                       ) -> "Services":
        """`ssrf_policy` vets webhook callbacks on create/update, `renew_grace_s` is how long
        renewed API keys stay valid (None for either: the environment's settings)."""
        from ...services.apis import ApiService
        from ...services.applications import ApplicationService
        from ...services.plans import PlanService
        from ...services.principal import NOBODY
        from ...services.subscriptions import SubscriptionService
        from ...services.users import UserService
        caller = caller or NOBODY
        return cls(ApiService(repo, caller), PlanService(repo, caller),
                   ApplicationService(repo, caller),
                   SubscriptionService(repo, caller, ssrf_policy=ssrf_policy,
                                       renew_grace_s=renew_grace_s),
                   users or UserService(repo), repo, ssrf_policy, renew_grace_s)

    def as_caller(self, user: dict[str, Any]) -> "Services":
        from ...services.principal import Principal
        return Services.for_repository(self.repo, Principal.from_user(user), self.users,
                                       self.ssrf_policy, self.renew_grace_s)


def services() -> Services:
    """The services acting as this request's authenticated user (g.user, set by auth)."""
    bound = g.get("evgate_services")
    if bound is None:
        bound = g.evgate_services = current_app.extensions["evgate.services"].as_caller(g.user)
    return bound

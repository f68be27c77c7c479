"""REST resources, one module per entity; each is a thin layer over evgate.services."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

#: Prefix of Gravitee 3.20's management API for the default organization and environment.
MANAGEMENT = "/management/organizations/DEFAULT/environments/DEFAULT"
#: Prefix of the consumer-side portal API.
PORTAL = "/portal/environments/DEFAULT"


@dataclass
class Services:
    apis: Any
    plans: Any
    applications: Any
    subscriptions: Any
    users: Any

    @classmethod
    def for_repository(cls, repo: Any, config: Any = None) -> "Services":
        from ...services.apis import ApiService
        from ...services.applications import ApplicationService
        from ...services.plans import PlanService
        from ...services.subscriptions import SubscriptionService
        from ...services.users import UserService
        from ...webhooks.ssrf import SsrfPolicy
        policy = SsrfPolicy.from_config(config) if config is not None else None
        return cls(ApiService(repo), PlanService(repo), ApplicationService(repo),
                   SubscriptionService(repo, ssrf_policy=policy), UserService(repo))


def services() -> Services:
    return current_app.extensions["evgate.services"]

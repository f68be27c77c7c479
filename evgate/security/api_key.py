"""api-key plans: the key travels in the `X-Gravitee-Api-Key` header or the `api-key` query
parameter, and must belong to an ACCEPTED subscription of this plan (not revoked, not
expired). Keys come from the worker's repository snapshot, so a new, paused or closed
subscription takes effect on the next sync without redeploying the API."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import UnauthorizedError
from . import snapshot_index
from .handler import PlanHandler

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)

HEADER = "X-Gravitee-Api-Key"
QUERY_PARAMETER = "api-key"


class ApiKeyPlan(PlanHandler):
    type = "api-key"

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any]
                               ) -> Iterable[tuple[str, str]]:
        propagate = configuration.get("propagateApiKey")
        if propagate is not None and not isinstance(propagate, bool):
            yield ".propagateApiKey", "must be true or false"

    @staticmethod
    def _key(ctx: "ExecutionContext") -> str | None:
        request = ctx.request
        if request is None:
            return None
        return request.headers.get(HEADER) or request.args.get(QUERY_PARAMETER) or None

    def has_credentials(self, ctx: "ExecutionContext") -> bool:
        return self._key(ctx) is not None

    def authenticate(self, ctx: "ExecutionContext") -> None:
        key = self._key(ctx)
        snapshot = self.api.runtime.snapshot
        record = snapshot_index.api_key(snapshot, key) if key else None
        if record is None or record["api_id"] != self.api.id or record["plan_id"] != self.id:
            raise UnauthorizedError("API key is not valid or has been revoked",
                                    key="API_KEY_INVALID")
        expire_at = record.get("expire_at")
        if isinstance(expire_at, datetime):
            if expire_at.tzinfo is None:
                expire_at = expire_at.replace(tzinfo=timezone.utc)
            if expire_at <= datetime.now(timezone.utc):
                raise UnauthorizedError("API key has expired", key="API_KEY_INVALID")
        subscription = snapshot_index.subscription(snapshot, record["subscription_id"])
        if subscription is None or subscription["status"] != "ACCEPTED":
            raise UnauthorizedError("the subscription of this API key is not active",
                                    key="API_KEY_INVALID")
        ctx.plan = self.plan
        ctx.subscription = subscription
        ctx.application_id = record["application_id"]

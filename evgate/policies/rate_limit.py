"""rate-limit: at most `limit` requests per period and key (request phase); else 429.

Configuration (Gravitee's): `{"rate": {"limit": 10, "periodTime": 10, "periodTimeUnit":
"MINUTES", "key": "<EL>", "useKeyOnly": false}, "addHeaders": true}` (a top-level `key` is
accepted too). Units: SECONDS, MINUTES, HOURS, DAYS.

Key: the plan and the subscription (else the application, else the client address for a
key-less plan), followed by the evaluated `key` template when one is configured; with
`useKeyOnly` the template's value alone. Each step has its own counters.

Scope: the counters are shared by every worker process of a node (evgate/core/
shared_windows.py: one shared memory table the gunicorn master maps before it forks), so a
client gets `limit` requests per period from a node, whichever worker its connections land
on. With M nodes behind a load balancer a client may get up to M x limit: nodes do not share
counters (a repository-backed limiter across nodes is future work). A redeploy that changes
the API or its plans restarts the API's counters; so does a change of the step's limit or
period. The table holds at most 65,536 windows per node: past that, the window ending first
is given up (its key starts afresh), so memory stays bounded whatever the key cardinality.

Algorithm: a fixed window per key on the monotonic clock, opened by the key's first request
and lasting one period.

Over the limit: 429 `{"message": "Rate limit exceeded! ...", "http_status_code": 429, "key":
"RATE_LIMIT_TOO_MANY_REQUESTS"}` with `Retry-After` (seconds). With `addHeaders`, every answer
carries `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` (epoch ms).
"""
from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import Field, WrapValidator

from ..definition.plugin_config import (OptionalFlag, PluginConfiguration, checked, must_be,
                                        required)
from ..core.shared_windows import SharedWindows, node_table
from ..el import ExpressionError, compile_template
from ..errors import TooManyRequestsError
from .base import Policy, as_text, template_problem

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

UNITS = {"SECONDS": 1, "MINUTES": 60, "HOURS": 3600, "DAYS": 86400}


def _unit(value: Any, handler: Any) -> Any:
    if not isinstance(value, str) or value.upper() not in UNITS:
        raise ValueError(f"must be one of {', '.join(UNITS)}")
    return handler(value)


def _key_template(value: Any, handler: Any) -> Any:
    """An EL template; an empty key is no key."""
    if value not in (None, ""):
        for _, message in template_problem(value, ""):
            raise ValueError(message)
    return handler(value)


KeyTemplate = Annotated[Optional[str], WrapValidator(_key_template)]


class Rate(PluginConfiguration):
    limit: Annotated[int, Field(strict=True, ge=0, validate_default=True),
                     checked("must be an integer >= 0")] = None  # type: ignore[assignment]
    periodTime: Annotated[int, Field(strict=True, ge=1),
                          checked("must be an integer >= 1")] = 1
    periodTimeUnit: Annotated[str, WrapValidator(_unit)] = "SECONDS"
    key: KeyTemplate = None
    useKeyOnly: OptionalFlag = None


class RateLimitConfiguration(PluginConfiguration):
    rate: Annotated[Rate, Field(validate_default=True),
                    must_be(dict, "is required: {limit, periodTime, periodTimeUnit}"),
                    required("is required: {limit, periodTime, periodTimeUnit}")
                    ] = None  # type: ignore[assignment]
    key: KeyTemplate = None
    addHeaders: OptionalFlag = None


class RateLimitPolicy(Policy):
    type = "rate-limit"
    phases = frozenset({"request"})
    configuration_model = RateLimitConfiguration

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        rate = self.configuration["rate"]
        self.limit = int(rate["limit"])
        self.period_time = int(rate.get("periodTime", 1))
        self.unit = str(rate.get("periodTimeUnit", "SECONDS")).upper()
        self.period = float(self.period_time * UNITS[self.unit])
        self.table: SharedWindows = node_table()
        self._scope: str | None = None
        key = rate.get("key") or self.configuration.get("key")
        self.key = compile_template(key) if key else None
        self.key_only = bool(rate.get("useKeyOnly")) and self.key is not None
        self.add_headers = bool(self.configuration.get("addHeaders", False))

    def _key(self, ctx: "ExecutionContext") -> str:
        custom = ""
        if self.key is not None:
            try:
                custom = as_text(self.key.evaluate(ctx.context_variables())) or ""
            except ExpressionError as exc:
                self.errors += 1
                self.burst_log(logging.WARNING, "API %s: rate-limit key %r failed: %s; "
                               "counting without it", getattr(self.api, "id", None),
                               self.key.source, exc)
        if self.key_only:
            return custom
        plan = (ctx.plan or {}).get("id") or ""
        subscription = (ctx.subscription or {}).get("id") or ctx.application_id
        if not subscription and ctx.request is not None:
            subscription = ctx.request.remote_addr
        return f"{plan}:{subscription or ''}:{custom}"

    def scope(self) -> str:
        """What the node's workers agree on for this step: the deployed API (its
        fingerprint), the step's place in it, the limit and the period."""
        if self._scope is None:
            api = self.api
            self._scope = (f"rate-limit|{getattr(api, 'id', '')}|"
                           f"{getattr(api, 'fingerprint', '')}|{self.place}|{self.limit}|"
                           f"{self.period}|")
        return self._scope

    def on_request(self, ctx: "ExecutionContext") -> None:
        allowed, remaining, reset_in = self.table.hit(self.scope() + self._key(ctx),
                                                      self.limit, self.period)
        headers: dict[str, str] = {}
        if self.add_headers:
            headers = {"X-Rate-Limit-Limit": str(self.limit),
                       "X-Rate-Limit-Remaining": str(remaining),
                       "X-Rate-Limit-Reset": str(int((time.time() + reset_in) * 1000))}
        if allowed:
            ctx.response_headers.update(headers)
            return
        headers["Retry-After"] = str(max(1, math.ceil(reset_in)))
        unit = self.unit.lower() if self.period_time != 1 else self.unit.lower().rstrip("s")
        raise TooManyRequestsError(
            f"Rate limit exceeded! You reached the limit of {self.limit} requests per "
            f"{self.period_time} {unit}", headers=headers, key="RATE_LIMIT_TOO_MANY_REQUESTS")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""rate-limit: at most `limit` requests per period and key (request phase); else 429.

Configuration (Gravitee's): `{"rate": {"limit": 10, "periodTime": 10, "periodTimeUnit":
"MINUTES", "key": "<EL>", "useKeyOnly": false}, "addHeaders": true}` (a top-level `key` is
accepted too). Units: SECONDS, MINUTES, HOURS, DAYS.

Key: the plan and the subscription (else the application, else the client address for a
key-less plan), followed by the evaluated `key` template when one is configured; with
`useKeyOnly` the template's value alone. Each step has its own counters.

Scope, read this: counters live in the memory of one gateway **worker process**. With N
workers (and M nodes) a client may get up to N x M x limit requests per period, depending on
which worker its connections land on. A shared, repository-backed limiter is future work.
Counters restart when the API is redeployed on the worker.

Algorithm: a fixed window per key on the monotonic clock, opened by the key's first request
and lasting one period. At most `MAX_KEYS` keys are kept (least recently used evicted first;
an evicted key starts a fresh window), so memory stays bounded whatever the key cardinality.

Over the limit: 429 `{"message": "Rate limit exceeded! ...", "http_status_code": 429, "key":
"RATE_LIMIT_TOO_MANY_REQUESTS"}` with `Retry-After` (seconds). With `addHeaders`, every answer
carries `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` (epoch ms).
"""
from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import Field, WrapValidator

from ..definition.plugin_config import (OptionalFlag, PluginConfiguration, checked, must_be,
                                        required)
from ..el import ExpressionError, compile_template
from ..errors import TooManyRequestsError
from .base import Policy, as_text, template_problem

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

UNITS = {"SECONDS": 1, "MINUTES": 60, "HOURS": 3600, "DAYS": 86400}
MAX_KEYS = 100_000


class FixedWindowCounter:
    """Per-key fixed windows with LRU eviction beyond `max_keys`. Not thread-safe: one per
    policy instance, used from the worker's greenlets (which never interleave inside it)."""

    def __init__(self, limit: int, period: float, max_keys: int = MAX_KEYS,
                 clock: Any = time.monotonic):
        self.limit = limit
        self.period = period
        self.max_keys = max_keys
        self.clock = clock
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def hit(self, key: str) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until the window resets) after counting one call."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now >= window[0]:
            window = [now + self.period, 0]
            self._windows[key] = window
            if len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        allowed = window[1] < self.limit
        if allowed:
            window[1] += 1
        return allowed, max(0, self.limit - int(window[1])), max(0.0, window[0] - now)

    def __len__(self) -> int:
        return len(self._windows)


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
        self.counter = FixedWindowCounter(self.limit, self.period_time * UNITS[self.unit])
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

    def on_request(self, ctx: "ExecutionContext") -> None:
        allowed, remaining, reset_in = self.counter.hit(self._key(ctx))
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

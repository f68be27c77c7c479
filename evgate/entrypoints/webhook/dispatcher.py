"""The per-worker webhook manager: one DeliveryLoop per active webhook subscription.

It listens to the runtime's snapshots (`GatewayRuntime.on_change`, every repository sync: 1 s
by default), so pause, resume, close and metadata changes apply within about one sync
interval plus a consumer-group rebalance:

- ACCEPTED + consumer STARTED on a deployed API with a `webhook` entrypoint and an endpoint
  with a group stream (kafka, mock): a loop runs (every worker runs one; Kafka splits the
  partitions between them);
- PAUSED, consumer STOPPED, CLOSED/REJECTED/FAILURE (gone from the snapshot), API undeployed:
  the loop stops (delivered offsets committed, nothing lost: a later loop resumes there);
- configuration changed (callback, headers, auth, secret) or API redeployed: restart;
- metadata changed: applied in place from the next record.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import gevent

from .delivery import DeliveryLoop
from .retry import Backoff
from .ssrf import SsrfPolicy
from .target import InvalidSubscriptionConfiguration

logger = logging.getLogger(__name__)

ACTIVE_STATUS = "ACCEPTED"
STOP_TIMEOUT_S = 10.0


def _restart_key(subscription: dict[str, Any]) -> str:
    return json.dumps([subscription.get("configuration"), subscription.get("plan_id")],
                      sort_keys=True, default=str)


def webhook_entrypoint(api: Any) -> Any:
    return next((e for e in getattr(api, "subscription_entrypoints", [])
                 if e.type == "webhook"), None)


class WebhookDispatcher:
    def __init__(self, runtime: Any):
        self.runtime = runtime
        config = runtime.config
        self.policy = SsrfPolicy.from_config(config)
        self.backoff = Backoff(base_s=config.webhook_retry_backoff_base_ms / 1000,
                               max_s=config.webhook_retry_backoff_max_ms / 1000,
                               max_attempts=config.webhook_retry_max_attempts)
        self.max_pending = config.webhook_max_pending
        self.loops: dict[str, DeliveryLoop] = {}
        self._keys: dict[str, str] = {}
        self._refused: dict[str, str] = {}   # subscription id -> restart key that cannot run
        self._warned: set[str] = set()

    def start(self) -> None:
        """Called in the worker before the first sync: loops start with the first snapshot."""
        if self.policy.allows_non_public:
            logger.warning("webhook callbacks may reach non-public addresses (%s): for local "
                           "development only; never on a gateway exposed to subscribers",
                           self.policy.describe())
        self.runtime.on_change(self.apply)

    def apply(self, snapshot: Any) -> None:
        wanted: dict[str, tuple[dict[str, Any], Any, Any]] = {}
        for sub in snapshot.subscriptions:
            if sub.get("status") != ACTIVE_STATUS or sub.get("consumer_status", "STARTED") \
                    != "STARTED":
                continue
            api = self.runtime.apis.get(sub.get("api_id"))
            entrypoint = webhook_entrypoint(api) if api is not None else None
            if entrypoint is None:
                continue
            entrypoint_id = (sub.get("configuration") or {}).get("entrypointId")
            if entrypoint_id not in (None, "webhook"):
                continue
            if not api.endpoint.can_group_stream:
                self._warn_once(api.id, "API %s has a webhook entrypoint but its endpoint "
                                "offers no group stream (a kafka endpoint that consumes); its "
                                "subscriptions are not delivered", api.id)
                continue
            wanted[sub["id"]] = (sub, api, entrypoint)
        stopping = []
        for sub_id, loop in list(self.loops.items()):
            want = wanted.get(sub_id)
            if want is None or loop.stopped or want[1] is not loop.api \
                    or _restart_key(want[0]) != self._keys.get(sub_id):
                stopping.append(self.loops.pop(sub_id))
                self._keys.pop(sub_id, None)
            else:
                loop.update_subscription(want[0])
        self._stop_all(stopping)
        for sub_id, (sub, api, entrypoint) in wanted.items():
            if sub_id in self.loops:
                continue
            key = _restart_key(sub)
            if self._refused.get(sub_id) == key:
                continue
            try:
                loop = DeliveryLoop(self.runtime, api, entrypoint, sub, self.policy,
                                    self.backoff, self.max_pending)
                loop.start()
            except InvalidSubscriptionConfiguration as exc:
                self._refused[sub_id] = key
                logger.error("webhook subscription %s cannot run: %s", sub_id, exc.message)
                self._mark_failure(sub_id, exc.message)
                continue
            except Exception:  # noqa: BLE001 - one subscription must not stop the others
                logger.exception("webhook subscription %s could not start", sub_id)
                continue
            self._refused.pop(sub_id, None)
            self.loops[sub_id] = loop
            self._keys[sub_id] = key

    def _mark_failure(self, sub_id: str, reason: str) -> None:
        if self.runtime.repo is None:
            return
        try:
            self.runtime.repo.subscriptions.mark_failure(sub_id, reason)
        except Exception:  # noqa: BLE001
            logger.exception("could not record FAILURE of subscription %s", sub_id)

    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(msg, *args)

    @staticmethod
    def _stop_all(loops: list[DeliveryLoop]) -> None:
        if not loops:
            return
        greenlets = [gevent.spawn(loop.stop, STOP_TIMEOUT_S) for loop in loops]
        gevent.joinall(greenlets, timeout=STOP_TIMEOUT_S + 2)

    def stop(self) -> None:
        """Worker draining: stop every loop (commit what was delivered). Must not raise."""
        loops, self.loops = list(self.loops.values()), {}
        try:
            self._stop_all(loops)
        except Exception:  # noqa: BLE001
            logger.exception("stopping webhook deliveries failed")

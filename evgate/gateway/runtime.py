"""The gateway runtime of one worker: deployed APIs, the router, Kafka clients, the sync.

`apply(snapshot)` turns what the repository says is deployed into running `DeployedApi`s,
rebuilding only the APIs whose fingerprint changed. Listeners (for example the webhook
dispatcher) get every new snapshot through `on_change`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from ..config import Config
from ..errors import DefinitionError
from ..kafka.pool import ProducerPool
from .deployment import DeployedApi, fingerprint
from .router import Router

logger = logging.getLogger(__name__)


class Snapshot:
    """What one repository read says gateways should run."""

    def __init__(self, revision: int, apis: list[dict[str, Any]],
                 plans: dict[str, list[dict[str, Any]]],
                 subscriptions: list[dict[str, Any]] | None = None,
                 api_keys: list[dict[str, Any]] | None = None):
        self.revision = revision
        self.apis = apis
        self.plans = plans
        self.subscriptions = subscriptions or []
        self.api_keys = api_keys or []


class GatewayRuntime:
    def __init__(self, config: Config, repo: Any = None):
        self.config = config
        self.repo = repo
        self.producers = ProducerPool()
        self.apis: dict[str, DeployedApi] = {}
        self.router = Router([])
        self.snapshot: Snapshot | None = None
        self.draining = False
        self._listeners: list[Callable[[Snapshot], None]] = []
        self.sync = None
        self.webhooks: Any = None  # evgate.webhooks.dispatcher.WebhookDispatcher, in start()
        #: open client streams (sse, websocket, http-get); closed with "goaway" on stop()
        self.streams: set[Any] = set()
        self._consumer_pool: Any = None

    @property
    def consumer_pool(self) -> Any:
        """The worker's Kafka consumer pool, created on first use (after the fork)."""
        import os
        pool = self._consumer_pool
        if pool is None or pool.pid != os.getpid():
            from ..kafka.consumer_pool import ConsumerPool
            pool = self._consumer_pool = ConsumerPool(self.config)
        return pool

    def on_change(self, listener: Callable[[Snapshot], None]) -> None:
        self._listeners.append(listener)

    def apply(self, snapshot: Snapshot) -> None:
        wanted: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
            api["id"]: (api["deployed_definition"], snapshot.plans.get(api["id"], []))
            for api in snapshot.apis}
        for api_id in list(self.apis):
            if api_id not in wanted:
                self.apis.pop(api_id).stop()
                logger.info("undeployed API %s", api_id)
        for api_id, (definition, plans) in wanted.items():
            current = self.apis.get(api_id)
            if current is not None and current.fingerprint == fingerprint(definition, plans):
                continue
            try:
                deployed = DeployedApi(definition, plans, self)
            except (DefinitionError, ImportError, KeyError, ValueError) as exc:
                logger.error("API %s cannot be deployed on this gateway: %s", api_id, exc)
                continue
            if current is not None:
                current.stop()
            deployed.start()
            self.apis[api_id] = deployed
            logger.info("%s API %s (%s) on %s", "redeployed" if current else "deployed",
                        api_id, deployed.name, deployed.paths)
        self.router = Router(self.apis.values())
        self.snapshot = snapshot
        for listener in self._listeners:
            try:
                listener(snapshot)
            except Exception:  # noqa: BLE001 - one listener must not stop the others
                logger.exception("snapshot listener %r failed", listener)

    def start(self) -> None:
        from .sync import RepositorySync
        if self.repo is not None and self.webhooks is None:
            from ..webhooks.dispatcher import WebhookDispatcher
            self.webhooks = WebhookDispatcher(self)  # before the first sync: sees every snapshot
            self.webhooks.start()
        if self.repo is not None and self.sync is None:
            self.sync = RepositorySync(self)
            self.sync.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Drain: stop syncing, stop every API, flush the producers."""
        self.draining = True
        if self.sync is not None:
            self.sync.stop()
        if self.webhooks is not None:  # commit what was delivered, before producers close
            self.webhooks.stop()
        from ..entrypoints.streaming import close_streams
        close_streams(self, "goaway", "the gateway is shutting down")
        if self._consumer_pool is not None:
            self._consumer_pool.close()
        for api in list(self.apis.values()):
            api.stop()
        self.producers.close(timeout)

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
from .pipeline import close_streams
from .router import Router
from .sync import RepositorySync, Snapshot

logger = logging.getLogger(__name__)


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
        self.webhooks: Any = None  # evgate.entrypoints.webhook.dispatcher.WebhookDispatcher, in start()
        from .last_delivery import LastDeliveryRecorder
        self.deliveries = LastDeliveryRecorder(repo)  # webhook "last success" per subscription
        #: open client streams (sse, websocket, http-get); closed with "goaway" on stop()
        self.streams: set[Any] = set()
        self._consumer_pool: Any = None
        #: client connections and requests in flight (evgate/observability/access.py)
        from ..observability.access import ConnectionTracker
        self.connections = ConnectionTracker()
        self._quiesced = False

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
        if self.repo is not None and self.webhooks is None:
            from ..entrypoints.webhook.dispatcher import WebhookDispatcher
            self.webhooks = WebhookDispatcher(self)  # before the first sync: sees every snapshot
            self.webhooks.start()
        if self.repo is not None and self.sync is None:
            self.sync = RepositorySync(self)
            self.sync.start()

    def drain(self, timeout: float = 10.0) -> bool:
        """SIGTERM, first phase, while gunicorn still serves (evgate/gunicorn_settings.py):
        refuse new requests (503 + Connection: close), stop the sync, stop webhook deliveries
        (delivered offsets committed), say goaway to every stream, wait up to `timeout` for
        the requests in flight (a POST waiting for its ack still gets its 202), then close
        idle keep-alive connections so gunicorn can end the worker without waiting out its
        graceful timeout. Producers stay open: `stop()` flushes them afterwards. True when
        every in-flight request finished in time. Must not raise."""
        try:
            self._quiesce()
            quiet = self.connections.wait_quiet(timeout)
            if not quiet:
                logger.warning("drain: %d requests still in flight after %.1fs",
                               self.connections.active, timeout)
            closed = self.connections.close_idle()
            logger.info("drain: in-flight requests %s; %d idle connections closed",
                        "finished" if quiet else "cut short", closed)
            return quiet
        except Exception:  # noqa: BLE001
            logger.exception("drain failed")
            return False

    def _quiesce(self) -> None:
        """Idempotent: the part of draining that stops new work and says goodbye."""
        self.draining = True
        if self._quiesced:
            return
        self._quiesced = True
        if self.sync is not None:
            self.sync.stop()
        # goaway first: streams are told at once, not after the webhook commits below
        close_streams(self, "goaway", "the gateway is shutting down")
        if self.webhooks is not None:  # commit what was delivered, before producers close
            self.webhooks.stop()
        self.deliveries.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Last phase (gunicorn's worker_exit, once it stopped serving; also alone, e.g. in
        tests): everything `drain` does if it did not run, then close the consumers, stop
        every API and flush the producers (records already handed to librdkafka are sent
        within `timeout`)."""
        self._quiesce()
        if self._consumer_pool is not None:
            self._consumer_pool.close()
        for api in list(self.apis.values()):
            api.stop()
        self.producers.close(timeout)

"""Liveness and readiness of one gateway worker (served on the node port, node_app.py).

- Liveness: the worker answers. Nothing else is checked: a liveness probe that failed on a
  Kafka outage would make an orchestrator restart healthy gateways for no gain.
- Readiness: the worker should get traffic. False (503) while it is draining, while the
  repository does not answer (`repo.ping()`), or while Kafka does not answer a metadata
  request: every distinct cluster of the deployed APIs' kafka endpoints, or
  EVGATE_KAFKA_BOOTSTRAP (EVGATE_KAFKA_BOOTSTRAP_OVERRIDE) when none is deployed.

The Kafka probe is a metadata request from a fresh AdminClient on a native thread (a blocking
librdkafka call never runs on the hub: docs/architecture.md, "Runtime rules"); a fresh client
reconnects at once when the broker is back instead of waiting out librdkafka's reconnect
backoff. The result comes back through HubHandoff. One check runs at a time per worker
(concurrent probes wait for it) and its result is reused for `health_cache_ms`.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import AsyncResult

from ..kafka.threads import HubHandoff, start_native_thread

if TYPE_CHECKING:
    from ..gateway.runtime import GatewayRuntime

logger = logging.getLogger(__name__)


def kafka_targets(runtime: "GatewayRuntime") -> list[dict[str, Any]]:
    """The distinct librdkafka connection configs readiness must reach."""
    config = runtime.config
    targets: dict[tuple, dict[str, Any]] = {}
    for api in list(runtime.apis.values()):
        endpoint = getattr(api, "endpoint", None)
        if endpoint is None or endpoint.type != "kafka":
            continue
        try:
            conf = connection_config(endpoint.configuration, config)
        except Exception:  # noqa: BLE001 - a definition the endpoint itself will report
            continue
        targets.setdefault(tuple(sorted((k, str(v)) for k, v in conf.items())), conf)
    if not targets:
        servers = config.kafka_bootstrap_override or config.kafka_bootstrap
        return [{"bootstrap.servers": servers}]
    return list(targets.values())


def connection_config(endpoint_configuration: dict[str, Any], config: Any) -> dict[str, Any]:
    """The librdkafka connection settings of an endpoint configuration (brokers and security),
    built as the gateway's own clients build them; a GatewayError for unusable security."""
    from ..kafka.client_config import common_config
    return common_config(endpoint_configuration, config)


def cluster_metadata(conf: dict[str, Any], timeout: float) -> Any:
    """One metadata request from a fresh AdminClient, librdkafka's own logging silenced.
    Blocks for up to `timeout`: on the hub, call it through a native thread (readiness);
    the CLI calls it directly. Raises whatever the client raises."""
    from confluent_kafka.admin import AdminClient
    full = dict(conf)
    full.update({"log_level": 0, "socket.timeout.ms": max(10, int(timeout * 1000)),
                 "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000))})
    admin = AdminClient(full)
    try:
        return admin.list_topics(timeout=timeout)
    finally:
        del admin


def failure_text(exc: BaseException) -> str:
    """librdkafka's reason for a failed request (a KafkaError's text when it carries one)."""
    error = exc.args[0] if getattr(exc, "args", None) else exc
    return str(error.str() if hasattr(error, "str") else error)


def _probe_on_thread(conf: dict[str, Any], timeout: float, handoff: HubHandoff,
                     result: AsyncResult) -> None:
    """Native thread: one metadata request; the outcome is handed to the hub."""
    outcome: tuple[bool, str]
    try:
        metadata = cluster_metadata(conf, timeout)
        outcome = (True, f"{len(metadata.brokers)} broker(s)") if metadata.brokers \
            else (False, "no broker in the metadata answer")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        outcome = (False, failure_text(exc))
    handoff.call(result.set, outcome)


class Readiness:
    def __init__(self, runtime: "GatewayRuntime"):
        self.runtime = runtime
        self.timeout = runtime.config.health_check_timeout_ms / 1000
        self.cache_s = runtime.config.health_cache_ms / 1000
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._running: AsyncResult | None = None

    def check(self) -> dict[str, Any]:
        """{"status": "UP"|"DOWN", "checks": {name: {"healthy": bool, "message"?: str}}}."""
        if self.runtime.draining:  # immediate, never cached: a load balancer must see it now
            return self._report({"gateway": _state(False, "draining: the worker is stopping")})
        if self._cached is not None and time.monotonic() - self._cached_at < self.cache_s:
            return self._cached
        if self._running is not None:
            return self._running.get()
        running = self._running = AsyncResult()
        try:
            report = self._report({"gateway": _state(True), "repository": self._repository(),
                                   "kafka": self._kafka()})
            self._cached, self._cached_at = report, time.monotonic()
            running.set(report)
            return report
        except BaseException as exc:
            running.set_exception(exc)
            raise
        finally:
            self._running = None

    @staticmethod
    def _report(checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
        healthy = all(check["healthy"] for check in checks.values())
        return {"status": "UP" if healthy else "DOWN", "checks": checks}

    def _repository(self) -> dict[str, Any]:
        repo = self.runtime.repo
        if repo is None:
            return _state(True, "no repository (static deployment)")
        return _state(True) if repo.ping() else _state(False, "the repository does not answer")

    def _kafka(self) -> dict[str, Any]:
        handoff = HubHandoff()
        probes = []
        for conf in kafka_targets(self.runtime):
            result = AsyncResult()
            start_native_thread(_probe_on_thread, conf, self.timeout, handoff, result)
            probes.append((conf.get("bootstrap.servers"), result))
        failures = []
        for servers, result in probes:
            try:
                ok, detail = result.get(timeout=self.timeout + 1.5)
            except gevent.Timeout:
                ok, detail = False, "no answer in time"
            if not ok:
                failures.append(f"{servers}: {detail}")
        if failures:
            if self._cached is None or self._cached["checks"].get("kafka", {}).get("healthy"):
                logger.warning("readiness: Kafka unreachable (%s)", "; ".join(failures))
            return _state(False, "; ".join(failures))
        return _state(True, f"{len(probes)} cluster(s) answered")


def _state(healthy: bool, message: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"healthy": healthy}
    if message:
        state["message"] = message
    return state

"""Live sync: each worker polls the repository's revision and applies changes.

One cheap query per interval (`SELECT value FROM revision`); only when it moved is the full
snapshot read. With PostgreSQL this works across nodes; within the sync interval (1 s by
default) every worker on every node runs the same deployment.
"""
from __future__ import annotations

import logging
from typing import Any

import gevent

from ..repository.applications import client_id

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


def read_snapshot(repo, revision: int) -> Snapshot:
    """Started APIs with their plans, live subscriptions (each with its application's
    `client_id`, which jwt plans match) and the API keys api-key plans accept."""
    apis = repo.apis.list_started()
    plans = {api["id"]: repo.plans.list_for_api(api["id"]) for api in apis}
    subscriptions = repo.subscriptions.list(statuses=("ACCEPTED", "PAUSED", "PENDING"))
    client_ids = {app["id"]: client_id(app["definition"]) for app in repo.applications.list()}
    for subscription in subscriptions:
        subscription["client_id"] = client_ids.get(subscription["application_id"])
    return Snapshot(revision, apis, plans, subscriptions, repo.api_keys.list_usable())


class RepositorySync:
    def __init__(self, runtime: Any):
        """`runtime`: the worker's GatewayRuntime (it builds this sync: not imported back)."""
        self.runtime = runtime
        self.interval = runtime.config.sync_interval_ms / 1000
        self._greenlet: gevent.Greenlet | None = None
        self.revision = -1
        self.healthy = False

    def sync_once(self) -> bool:
        """Apply the repository's state if it changed; True when something was applied."""
        repo = self.runtime.repo
        revision = repo.revision()
        if revision == self.revision:
            return False
        snapshot = read_snapshot(repo, revision)
        self.runtime.apply(snapshot)
        self.revision = revision
        return True

    def _loop(self) -> None:
        while True:
            try:
                self.sync_once()
                if not self.healthy:
                    logger.info("repository sync healthy (revision %s)", self.revision)
                self.healthy = True
            except Exception:  # noqa: BLE001 - keep serving what is deployed; retry
                if self.healthy:
                    logger.exception("repository sync failed; keeping the current deployment")
                self.healthy = False
            gevent.sleep(self.interval)

    def start(self) -> None:
        try:
            self.sync_once()  # serve the deployed APIs from the first request on
            self.healthy = True
        except Exception:  # noqa: BLE001
            logger.exception("initial repository sync failed; retrying in the background")
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

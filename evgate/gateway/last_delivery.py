"""When each webhook subscription last delivered successfully, kept in the repository.

A delivery only notes its time in this worker's dict (no I/O on the delivery path); a
greenlet writes the noted times every FLUSH_INTERVAL_S in one transaction, so the repository
sees at most one write per subscription per worker per interval however fast records flow.
Every worker of every node writes its own newest time with "only if newer"
(`SubscriptionStore.record_deliveries`), so the stored value is the newest across the
cluster and never goes back. The write does not bump the revision: gateways do not resync
for it. The management API shows it as `lastDeliveryAt`, up to one interval behind.

Why the repository rather than a metric gauge: the subscription GET must answer on any
management node, without scraping every gateway; and the value survives restarts.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

import gevent

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 5.0


class LastDeliveryRecorder:
    def __init__(self, repo: Any, interval_s: float = FLUSH_INTERVAL_S):
        self.repo = repo
        self.interval_s = interval_s
        self._marks: dict[str, float] = {}
        self._greenlet: gevent.Greenlet | None = None
        self._failing = False

    def note(self, sub_id: str) -> None:
        """A successful delivery of `sub_id` now. Called on the delivery path: a dict write."""
        self._marks[sub_id] = time.time()
        if self._greenlet is None and self.repo is not None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval_s)
            self.flush()

    def flush(self) -> None:
        """Write what was noted since the last flush. Never raises: on a repository error
        the marks are kept for the next attempt (the log says so once per outage)."""
        marks, self._marks = self._marks, {}
        if not marks or self.repo is None:
            return
        try:
            self.repo.subscriptions.record_deliveries(
                {sub_id: datetime.fromtimestamp(at, timezone.utc)
                 for sub_id, at in marks.items()})
        except Exception as exc:  # noqa: BLE001 - deliveries go on; retried next interval
            for sub_id, at in marks.items():
                if at > self._marks.get(sub_id, 0.0):
                    self._marks[sub_id] = at
            if not self._failing:
                logger.warning("could not record the last webhook deliveries (%s); "
                               "retrying every %gs", type(exc).__name__, self.interval_s)
            self._failing = True
            return
        if self._failing:
            logger.info("last webhook deliveries recorded again")
        self._failing = False

    def stop(self) -> None:
        """Worker draining: write the last marks, stop the greenlet. Never raises."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        self.flush()

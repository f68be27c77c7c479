"""Polling helper for integration tests: the gateway applies changes asynchronously (sync
interval, consumer rebalances), so tests wait for an outcome, bounded, instead of sleeping."""
from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0,
             interval: float = 0.1) -> Any:
    """The first truthy result of `predicate()`, or AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}")

"""Native threads and the hand-off back to the gevent hub.

`start_native_thread` uses the *original* `_thread.start_new_thread`, so the code runs on a real
OS thread even when gevent has monkey-patched `threading`. Code on such a thread must not touch
gevent objects (AsyncResult, Event, locks created after patching, logging handlers' locks):
it hands work to the hub with `HubHandoff.call`, which queues it on the hub's loop with
`run_callback_threadsafe` (gevent documents AsyncResult.set as same-thread only).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import gevent
from gevent import monkey

logger = logging.getLogger(__name__)

_start_new_thread = monkey.get_original("_thread", "start_new_thread")
_allocate_lock = monkey.get_original("_thread", "allocate_lock")


def start_native_thread(target: Callable[..., Any], *args: Any) -> int:
    """Run `target(*args)` on a real OS thread (never a greenlet)."""
    return _start_new_thread(target, args)


def native_lock() -> Any:
    """A real lock, safe between a native thread and the hub thread (never blocks the hub long)."""
    return _allocate_lock()


class HubHandoff:
    """Calls functions on the hub thread of the greenlets that created this object."""

    def __init__(self) -> None:
        self.hub = gevent.get_hub()
        self._run = self.hub.loop.run_callback_threadsafe

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Safe from any thread: `fn(*args)` runs soon on the hub thread."""
        self._run(fn, *args)


class HubLogger:
    """A `logging.Logger` stand-in for librdkafka's log callback, which runs on the client's
    native thread: records are re-emitted on the hub thread, where handlers' locks are safe."""

    def __init__(self, handoff: HubHandoff, name: str):
        self._handoff = handoff
        self._logger = logging.getLogger(name)

    def log(self, level: int, msg: str, *args: Any, **_kwargs: Any) -> None:
        if self._logger.isEnabledFor(level):
            self._handoff.call(self._logger.log, level, msg, *args)

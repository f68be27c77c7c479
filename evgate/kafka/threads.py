"""Native threads and the hand-off back to the gevent hub.

`start_native_thread` uses the *original* `_thread.start_new_thread`, so the code runs on a real
OS thread even when gevent has monkey-patched `threading`. Code on such a thread must not touch
gevent objects (AsyncResult, Event, locks created after patching, logging handlers' locks):
it hands work to the hub with `HubHandoff.call`, which queues it on the hub's loop with
`run_callback_threadsafe` (gevent documents AsyncResult.set as same-thread only).
"""
from __future__ import annotations

import logging
import re
import time
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


_NUMBERS = re.compile(r"\d+")


class RepeatLimiter:
    """Lets each distinct message through once per `interval` seconds and counts the rest.

    librdkafka repeats a persistent failure (a wrong SASL password, a broker down) on every
    reconnect, about twice a second per client: the log would drown in it. Messages that
    differ only in numbers ("after 301ms", "3 identical error(s) suppressed") count as one.
    `admit(text)` is None for a repeat within the interval, else the number of repeats
    suppressed since the message was last let through. One per client; safe from any thread.
    """

    INTERVAL = 10.0
    MAX_MESSAGES = 256   # distinct messages remembered (the oldest is forgotten first)

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._seen: dict[str, list[float]] = {}   # message -> [let through at, suppressed]
        self._lock = native_lock()

    def admit(self, text: str) -> int | None:
        key = _NUMBERS.sub("#", text)
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return None
            if entry is None and len(self._seen) >= self.MAX_MESSAGES:
                del self._seen[next(iter(self._seen))]
            self._seen.pop(key, None)   # re-inserted last: the dict stays oldest-first
            self._seen[key] = [now, 0]
            return int(entry[1]) if entry is not None else 0


def suppressed_note(count: int, interval: float) -> str:
    """The suffix of a message let through after `count` repeats were held back."""
    return f" ({count} similar message(s) suppressed in the last {interval:.0f}s)" if count \
        else ""


class HubLogger:
    """A `logging.Logger` stand-in for librdkafka's log callback, which runs on the client's
    native thread: records are re-emitted on the hub thread, where handlers' locks are safe,
    each distinct message at most once per RepeatLimiter.INTERVAL (with a count of repeats)."""

    def __init__(self, handoff: HubHandoff, name: str):
        self._handoff = handoff
        self._logger = logging.getLogger(name)
        self._repeats = RepeatLimiter()

    def log(self, level: int, msg: str, *args: Any, **_kwargs: Any) -> None:
        if not self._logger.isEnabledFor(level):
            return
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = f"{msg} {args!r}"
        suppressed = self._repeats.admit(text)
        if suppressed is not None:
            self._handoff.call(self._logger.log, level, "%s%s", text,
                               suppressed_note(suppressed, self._repeats.interval))

"""Fixed-window counters shared by every worker process of one node.

Why: a gateway node runs N gunicorn workers, and a client's connections land on any of them.
Counters kept in each worker's memory let a client through N times the configured limit.
This table lives in one anonymous shared memory mapping. The gunicorn master creates it
before it forks the workers (`create_node_table`), so every worker maps the same pages.
Without a master (unit tests, the CLI) `node_table()` makes one for the process alone.

Layout: `slots` records of 32 bytes: a 16-byte BLAKE2b digest of the key, the window's end on
CLOCK_MONOTONIC (a system-wide clock, the same in every process), the count. A key's record is
found by linear probing over `probe` slots from the digest's home slot. Records are never
deleted; a record whose window has ended is free for any key. When all `probe` slots hold
running windows, the window that ends first is given up (that key starts afresh: memory stays
bounded whatever the number of keys, like an LRU eviction).

Locking: a lock for the threads of a process, then one POSIX record lock (`fcntl.lockf`) on an unlinked temporary file, held for the
few microseconds of one update. The kernel drops it when its holder dies, so a worker killed
in the middle cannot wedge the others (a semaphore would stay taken). The holder never yields
to another greenlet inside; other workers wait in the kernel.
"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import struct
import tempfile
import threading
import time
from typing import Any, Callable

#: digest, window end (monotonic seconds; 0.0 = never used), count
_SLOT = struct.Struct("=16sdI4x")
DEFAULT_SLOTS = 1 << 16          # 2 MiB
DEFAULT_PROBE = 16


class SharedWindows:
    """`hit(key, limit, period)` counts one event of `key` in its current window unless the
    limit is reached (rate limits); `add(key, period)` counts it anyway (failure counts)."""

    def __init__(self, slots: int = DEFAULT_SLOTS, probe: int = DEFAULT_PROBE,
                 clock: Callable[[], float] = time.monotonic):
        if slots < 1 or probe < 1:
            raise ValueError("slots and probe must be >= 1")
        self.slots = slots
        self.probe = min(probe, slots)
        self._clock = clock
        self._map = mmap.mmap(-1, slots * _SLOT.size)     # MAP_SHARED | MAP_ANONYMOUS
        self._lock_file = tempfile.TemporaryFile(prefix="evgate-windows-")   # unlinked
        self._fd = self._lock_file.fileno()
        # record locks exclude processes, not the threads of one process
        self._threads = threading.Lock()

    def hit(self, key: str, limit: int, period: float) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until the window ends) after counting one event; a
        refused event is not counted. The window opens with the key's first event."""
        allowed, count, reset_in = self._update(key, period, 1, limit)
        return allowed, max(0, limit - count), reset_in

    def add(self, key: str, period: float, amount: int = 1) -> tuple[int, float]:
        """(events of `key` in its window, seconds until it ends) after counting `amount`
        (0: only look; a key without a running window is then left out of the table)."""
        _, count, reset_in = self._update(key, period, amount, None)
        return count, reset_in

    def _update(self, key: str, period: float, amount: int, limit: int | None
                ) -> tuple[bool, int, float]:
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        home = int.from_bytes(digest[:8], "little") % self.slots
        size = _SLOT.size
        unpack, pack, buf = _SLOT.unpack_from, _SLOT.pack_into, self._map
        with self._threads:
            return self._locked_update(digest, home, period, amount, limit,
                                       unpack, pack, buf, size)

    def _locked_update(self, digest: bytes, home: int, period: float, amount: int,
                       limit: int | None, unpack: Any, pack: Any, buf: Any, size: int
                       ) -> tuple[bool, int, float]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            now = self._clock()
            place = free = soonest = -1
            soonest_end = float("inf")
            end, count = 0.0, 0
            for step in range(self.probe):
                offset = ((home + step) % self.slots) * size
                stored, stored_end, stored_count = unpack(buf, offset)
                if stored == digest:
                    place, end, count = offset, stored_end, stored_count
                    break
                if stored_end <= now:
                    if free < 0:
                        free = offset
                elif stored_end < soonest_end:
                    soonest, soonest_end = offset, stored_end
            if end <= now:                      # a new key, or its window has ended
                if not amount:
                    return True, 0, 0.0
                end, count = now + period, 0
            if place < 0:
                place = free if free >= 0 else soonest
            allowed = limit is None or count < limit
            if allowed and amount:
                count += amount
                pack(buf, place, digest, end, count)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        return allowed, count, max(0.0, end - now)


_node_table: SharedWindows | None = None
_from_master = False


def create_node_table(slots: int = DEFAULT_SLOTS) -> SharedWindows:
    """The master's call, before it forks the workers: they all share this table."""
    global _node_table, _from_master
    _node_table, _from_master = SharedWindows(slots), True
    return _node_table


def node_table() -> SharedWindows:
    """The table this process shares with the node's other workers (one of its own when no
    master made one)."""
    global _node_table
    if _node_table is None:
        _node_table = SharedWindows()
    return _node_table


def master_table() -> SharedWindows | None:
    """The table a master made before forking this worker; None outside a server (the CLI,
    tests), where counters of one process are all there is."""
    return _node_table if _from_master else None

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

Locking: one POSIX record lock (`fcntl.lockf`) on an unlinked temporary file, held for the
few microseconds of one update. The kernel drops it when its holder dies, so a worker killed
in the middle cannot wedge the others (a semaphore would stay taken). The holder never yields
to another greenlet inside; other workers wait in the kernel.
"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import time
from typing import Callable

#: digest, window end (monotonic seconds; 0.0 = never used), count
_SLOT = struct.Struct("=16sdI4x")
DEFAULT_SLOTS = 1 << 16          # 2 MiB
DEFAULT_PROBE = 16


class SharedWindows:
    """`hit(key, limit, period)` counts one event of `key` in its current window."""

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
        self.pid = os.getpid()

    def hit(self, key: str, limit: int, period: float) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until the window ends) after counting one event; a
        refused event is not counted. The window opens with the key's first event."""
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        home = int.from_bytes(digest[:8], "little") % self.slots
        size = _SLOT.size
        unpack, pack, buf = _SLOT.unpack_from, _SLOT.pack_into, self._map
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
            if place < 0:
                place = free if free >= 0 else soonest
            if end <= now:                      # a new key, or its window has ended
                end, count = now + period, 0
            allowed = count < limit
            if allowed:
                count += 1
            pack(buf, place, digest, end, count)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        return allowed, max(0, limit - count), max(0.0, end - now)


_node_table: SharedWindows | None = None


def create_node_table(slots: int = DEFAULT_SLOTS) -> SharedWindows:
    """The master's call, before it forks the workers: they all share this table."""
    global _node_table
    _node_table = SharedWindows(slots)
    return _node_table


def node_table() -> SharedWindows:
    """The table this process shares with the node's other workers (one of its own when no
    master made one)."""
    global _node_table
    if _node_table is None:
        _node_table = SharedWindows()
    return _node_table

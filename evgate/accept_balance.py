"""New connections spread evenly between the workers of one gunicorn server.

Why: the workers share the master's listening socket, and a burst of new connections goes to
whichever worker is awake to accept them: ten connections opened at once were measured
splitting 10/0, 7/3 or 5/5, fifty up to 44/6 (docs/benchmarks.md). Keep-alive and streaming
clients stay on the worker that accepted them, and the clients of the fuller worker share its
one hub: ten polling clients read at rates up to 6x apart. The kernel spreads connections
evenly only between sockets of their own (SO_REUSEPORT), which would drop the connections
waiting in a stopping worker's queue at every restart; this keeps the one shared socket.

How: the master maps a small table, one slot per worker, before it forks them
(`create_table` in `on_starting`) and gives each new worker a free slot (`assign_slot` in
`pre_fork`; `release_slot` in `child_exit`). A worker writes into its slot how many
connections it is serving. When its listening socket is readable and it serves more than
some other worker, it leaves the connection to that worker: it stops accepting for
WAIT_STEP and looks again. Once connections have been queued for EVGATE_ACCEPT_BALANCE_MS
(the other worker may be busy, stuck or gone), it takes them as they come until the queue is
empty; when it is among the least loaded, at once. So a new connection waits at most about
that long, and only while another worker holds fewer connections than this one.

Counted: the connections a worker's server greenlets serve (gunicorn's pool), and the
streams handed over from them to the worker's hub (evgate/entrypoints/detached.py: SSE and
WebSocket clients on the fast path), which `hold` keeps counted until they end: without
them, a worker serving thousands of streams would count as empty.
"""
from __future__ import annotations

import logging
import mmap
import select
import time
from typing import Any, Callable

from gevent import monkey

logger = logging.getLogger(__name__)

FREE = -1
SLOTS = 256          # workers one master can run at once with a slot (more: not balanced)
_HIGH = 0            # the table's first word: 1 + the highest slot ever given (a scan's end)
WAIT_STEP = 0.001    # seconds between two looks while connections wait for a peer (libev: 1 ms least)
STALE = 1.0          # seconds without a look after which a burst's wait is taken as over

_table: memoryview | None = None
_original_poll = monkey.get_original("select", "poll")
_worker_balance: "Balance | None" = None   # this worker's (`balance_for`), None when off


def create_table(slots: int = SLOTS) -> memoryview:
    """The master's call, before the fork: every worker maps the same slots, all free."""
    global _table
    area = mmap.mmap(-1, (1 + slots) * 8)          # MAP_SHARED | MAP_ANONYMOUS
    _table = memoryview(area).cast("q")
    for index in range(1, 1 + slots):
        _table[index] = FREE
    _table[_HIGH] = 1
    return _table


def assign_slot(server: Any, worker: Any) -> None:
    """Master, pre_fork: the first slot no live worker holds (None: no table or no slot
    left, and that worker accepts as connections come)."""
    worker.accept_slot = None
    if _table is None:
        return
    taken = {getattr(other, "accept_slot", None) for other in server.WORKERS.values()}
    for index in range(1, len(_table)):
        if index not in taken:
            _table[index] = FREE     # a worker that died before child_exit freed its slot
            _table[_HIGH] = max(_table[_HIGH], index + 1)
            worker.accept_slot = index
            return
    logger.warning("no accept-balance slot left for a new worker (%s slots): its new "
                   "connections are not balanced", len(_table) - 1)


def release_slot(worker: Any) -> None:
    """Master, child_exit: the worker's slot is free again."""
    slot = getattr(worker, "accept_slot", None)
    if _table is not None and slot is not None:
        _table[slot] = FREE


class Balance:
    """A worker's side: its count of connections, and whether to leave a new one to a peer."""

    def __init__(self, table: memoryview, slot: int, max_wait: float):
        self.table = table
        self.slot = slot
        self.max_wait = max_wait
        self.count = 0
        self.accepting = True
        table[slot] = 0

    def opened(self) -> None:
        self.count += 1
        if self.accepting:
            self.table[self.slot] = self.count

    def closed(self) -> None:
        self.count -= 1
        if self.accepting:
            self.table[self.slot] = self.count

    def retire(self) -> None:
        """The worker stops accepting (shutdown): peers no longer leave connections to it."""
        self.accepting = False
        self.table[self.slot] = FREE

    def peer_has_fewer(self) -> bool:
        """Another accepting worker serves fewer connections than this one."""
        table, mine = self.table, self.count
        if mine <= 0 or not self.accepting:
            return False
        slot = self.slot
        for index in range(1, table[_HIGH]):
            count = table[index]
            if count < mine and count != FREE and index != slot:
                return True
        return False


def balance_for(worker: Any, max_wait_ms: int) -> Balance | None:
    """The worker's Balance, or None when it has no slot, runs alone, or balancing is off."""
    global _worker_balance
    slot = getattr(worker, "accept_slot", None)
    if _table is None or slot is None or max_wait_ms <= 0 or worker.cfg.workers < 2:
        return None
    _worker_balance = Balance(_table, slot, max_wait_ms / 1000.0)
    return _worker_balance


def hold() -> Callable[[], None]:
    """Count one more connection for this worker until the returned function is called
    (once): a stream whose connection left its server greenlet for the hub. A no-op where
    the balance is off."""
    balance = _worker_balance
    if balance is None:
        return _nothing
    balance.opened()
    return balance.closed


def _nothing() -> None:
    return None


class BalancedAccept:
    """Mixin for a gevent server (before StreamServer or a WSGIServer in the bases): accept
    only while this worker is among the least loaded, or once connections waited enough.
    `balance` is set on the class the worker makes (None: accept as gevent does).

    A wait belongs to a burst: it starts when a connection is first left to a peer and
    ends when the queue is found empty (the listening socket not readable: between two
    looks, or an accept that found nothing). While it runs, the worker does not watch the
    socket but looks every WAIT_STEP; it accepts at once when the peers caught up, and
    takes everything queued (`_draining`) once the wait has lasted max_wait. A wait that
    restarted after each accept made a burst of 50 connections on busy workers wait
    0.3-0.6 s (docs/benchmarks.md)."""

    balance: Balance | None = None
    _balance_timer: Any = None
    _waiting_since: float | None = None
    _looked = 0.0
    _draining = False

    def set_max_accept(self) -> None:
        """pywsgi accepts one connection per wake-up in a multi-process server (a crude
        balance); balanced, a burst is accepted in one wake-up as far as the balance allows,
        so that every accept is followed by a look at the queue and the burst's end is seen."""
        if self.balance is None:
            super().set_max_accept()

    def do_read(self):  # noqa: ANN201 - gevent's signature
        balance = self.balance
        if balance is not None and not self._draining and balance.peer_has_fewer():
            now = time.monotonic()
            if self._waiting_since is None or now - self._looked > STALE:
                self._waiting_since = now   # (a burst whose end went unseen: a new one)
            self._looked = now
            if now - self._waiting_since < balance.max_wait:
                self._wait_step()
                return None
            self._draining = True   # the peers are not keeping up: take the queue
        accepted = super().do_read()
        if accepted is None:        # nothing queued: the burst is over
            self._waiting_since = None
            self._draining = False
        return accepted

    def _wait_step(self) -> None:
        self.stop_accepting()
        self._balance_timer = timer = self.loop.timer(WAIT_STEP)
        timer.start(self._look_again)

    def _look_again(self) -> None:
        self._balance_timer.close()
        self._balance_timer = None
        if not self.started:
            return
        self._looked = time.monotonic()
        if not _readable(self.socket.fileno()):
            self._waiting_since = None   # the peers took them all: the burst is over
            self._draining = False
            self.start_accepting()
            return
        if self.balance.peer_has_fewer() and \
                time.monotonic() - self._waiting_since < self.balance.max_wait:
            self._wait_step()
            return
        # the peers caught up, or the wait is over: accept now, not when the watcher
        # fires (a peer may empty the queue first, and this burst's wait would never end)
        self.start_accepting()
        self._do_read()

    def do_handle(self, *args):  # noqa: ANN002, ANN201
        if self.balance is not None:
            self.balance.opened()   # do_close, called after the handler or a failed spawn
        return super().do_handle(*args)

    def do_close(self, *args):  # noqa: ANN002, ANN201
        try:
            return super().do_close(*args)
        finally:
            if self.balance is not None:
                self.balance.closed()

    def close(self) -> None:
        if self.balance is not None:
            self.balance.retire()
        if self._balance_timer is not None:
            self._balance_timer.close()
            self._balance_timer = None
        super().close()


def _readable(fd: int) -> bool:
    poller = _original_poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))

"""The accept balance (evgate/accept_balance.py): slots given and freed by the master, the
worker's count, when a worker leaves a new connection to a peer, and a real gevent server
that waits for a peer, then accepts anyway once the wait is over."""
from __future__ import annotations

import time
from contextlib import contextmanager
from types import SimpleNamespace

import gevent
import pytest
from gevent import socket as gsocket
from gevent.server import StreamServer

from evgate import accept_balance
from evgate.accept_balance import FREE, Balance, BalancedAccept


@pytest.fixture()
def table(monkeypatch):
    monkeypatch.setattr(accept_balance, "_table", None)
    return accept_balance.create_table(slots=4)


def arbiter(*workers) -> SimpleNamespace:
    return SimpleNamespace(WORKERS={index: worker for index, worker in enumerate(workers)})


def test_the_master_gives_each_worker_a_slot_no_live_worker_holds(table):
    first, second, third = SimpleNamespace(), SimpleNamespace(), SimpleNamespace()
    accept_balance.assign_slot(arbiter(), first)
    accept_balance.assign_slot(arbiter(first), second)
    assert (first.accept_slot, second.accept_slot) == (1, 2)
    accept_balance.release_slot(first)
    accept_balance.assign_slot(arbiter(second), third)   # first is gone: its slot is free
    assert third.accept_slot == 1
    assert table[0] == 3   # the scan's end: slots 1 and 2 were ever given


def test_a_worker_beyond_the_slots_accepts_unbalanced(table):
    workers = []
    for _ in range(4):
        worker = SimpleNamespace()
        accept_balance.assign_slot(arbiter(*workers), worker)
        workers.append(worker)
    late = SimpleNamespace()
    accept_balance.assign_slot(arbiter(*workers), late)
    assert late.accept_slot is None
    assert accept_balance.balance_for(
        SimpleNamespace(accept_slot=None, cfg=SimpleNamespace(workers=5)), 20) is None


def test_release_frees_the_slot_so_peers_stop_counting_on_it(table):
    worker = SimpleNamespace()
    accept_balance.assign_slot(arbiter(), worker)
    Balance(table, worker.accept_slot, 0.02)
    assert table[worker.accept_slot] == 0
    accept_balance.release_slot(worker)
    assert table[worker.accept_slot] == FREE


def test_no_balance_without_a_master_table_alone_or_switched_off(monkeypatch):
    monkeypatch.setattr(accept_balance, "_table", None)
    two = SimpleNamespace(accept_slot=1, cfg=SimpleNamespace(workers=2))
    assert accept_balance.balance_for(two, 20) is None          # no master made a table
    accept_balance.create_table(slots=4)
    assert accept_balance.balance_for(two, 20) is not None
    assert accept_balance.balance_for(two, 0) is None           # EVGATE_ACCEPT_BALANCE_MS=0
    one = SimpleNamespace(accept_slot=1, cfg=SimpleNamespace(workers=1))
    assert accept_balance.balance_for(one, 20) is None          # nobody to leave it to


def balances(table, count: int) -> list[Balance]:
    table[0] = 1 + count
    return [Balance(table, slot, 0.02) for slot in range(1, 1 + count)]


def test_a_worker_leaves_a_connection_only_to_a_peer_with_fewer(table):
    mine, peer = balances(table, 2)
    assert not mine.peer_has_fewer()          # 0 and 0: accept
    mine.opened()
    assert table[mine.slot] == 1
    assert mine.peer_has_fewer()               # 1 against 0
    peer.opened()
    assert not mine.peer_has_fewer()           # 1 and 1
    peer.closed()
    assert mine.peer_has_fewer()
    mine.closed()
    assert not mine.peer_has_fewer() and table[mine.slot] == 0


def test_free_slots_and_retired_workers_are_not_peers(table):
    mine, peer = balances(table, 2)
    table[0] = 4          # slot 3 was given once and is free now
    mine.opened()
    mine.opened()
    peer.opened()
    assert mine.peer_has_fewer()
    peer.retire()                              # shutting down: takes no more connections
    assert table[peer.slot] == FREE
    assert not mine.peer_has_fewer()
    peer.closed()                              # its last connections end: slot stays free
    assert table[peer.slot] == FREE


def test_a_retired_worker_never_waits(table):
    mine, _ = balances(table, 2)
    mine.opened()
    mine.retire()
    assert not mine.peer_has_fewer()


class Server(BalancedAccept, StreamServer):
    pass


@contextmanager
def balanced_server(table, max_wait: float, mine_count: int, peer_count: int):
    """A real gevent server on this worker's slot (`mine_count` connections held), beside a
    peer slot that holds `peer_count` and never accepts: (balance, accept times, server)."""
    mine, peer = balances(table, 2)
    mine.max_wait = max_wait
    for _ in range(mine_count):
        mine.opened()
    for _ in range(peer_count):
        peer.opened()
    accepted: list[float] = []

    def handle(sock, address):
        accepted.append(time.monotonic())
        sock.sendall(b"hi")

    server = type("S", (Server,), {"balance": mine})(("127.0.0.1", 0), handle)
    server.start()
    try:
        yield mine, accepted, server
    finally:
        server.close()


def test_a_server_waits_for_a_peer_with_fewer_then_accepts_anyway(table):
    with balanced_server(table, 0.3, mine_count=1, peer_count=0) as (mine, accepted, server):
        started = time.monotonic()
        client = gsocket.create_connection(server.address)
        gevent.sleep(0.05)
        assert accepted == []                  # left to the peer, which never takes it
        assert client.recv(2) == b"hi"         # then taken here: never left hanging
        assert accepted[0] - started >= 0.3
        gevent.sleep(0.01)
        assert table[mine.slot] == 1           # the connection's end counted it out again
        client.close()
    assert table[mine.slot] == FREE            # a closed server takes no connections


def test_a_server_accepts_at_once_among_the_least_loaded(table):
    with balanced_server(table, 30.0, mine_count=0, peer_count=1) as (mine, accepted, server):
        clients = []
        for _ in range(2):   # 0 against 1, then 1 against 1: both taken without a wait
            client = gsocket.create_connection(server.address)
            assert client.recv(2) == b"hi"
            clients.append(client)
        assert len(accepted) == 2
        gevent.sleep(0.01)
        assert table[mine.slot] == 0   # both handlers ended, their sockets closed


def test_a_burst_a_peer_emptied_does_not_shorten_the_next_ones_wait(table):
    with balanced_server(table, 0.2, mine_count=1, peer_count=0) as (_, accepted, server):
        server._waiting_since = time.monotonic() - 10   # a wait that began long ago
        server.stop_accepting()
        server._balance_timer = server.loop.timer(0)
        server._balance_timer.start(server._look_again)  # nothing queued: the burst is over
        gevent.sleep(0.01)
        assert server._waiting_since is None
        started = time.monotonic()
        client = gsocket.create_connection(server.address)
        assert client.recv(2) == b"hi"
        assert accepted[0] - started >= 0.2            # the new connection waited its turn
        client.close()


def test_a_wait_whose_end_went_unseen_is_not_carried_into_the_next_burst(table):
    with balanced_server(table, 0.2, mine_count=1, peer_count=0) as (_, accepted, server):
        server._waiting_since = server._looked = time.monotonic() - 10   # never looked since
        started = time.monotonic()
        client = gsocket.create_connection(server.address)
        assert client.recv(2) == b"hi"
        assert accepted[0] - started >= 0.2
        client.close()


def test_once_a_wait_is_over_the_queued_connections_are_taken_without_another(table):
    with balanced_server(table, 0.3, mine_count=1, peer_count=0) as (_, accepted, server):
        clients = [gsocket.create_connection(server.address) for _ in range(3)]
        assert [client.recv(2) for client in clients] == [b"hi"] * 3
        # one wait for the queue, not one per connection (3 x 0.3 s)
        assert accepted[-1] - accepted[0] < 0.25
        for client in clients:
            client.close()


def test_a_balanced_wsgi_server_accepts_a_burst_in_one_wake_up(table):
    """pywsgi takes one connection per wake-up in a multi-process server; balanced, every
    accept is followed by a look at the queue, so the server sees a burst's end."""
    from gunicorn.workers.ggevent import PyWSGIServer
    mine, _ = balances(table, 2)
    environ = {"wsgi.multiprocess": True}
    plain = PyWSGIServer(("127.0.0.1", 0), application=None, environ=environ)
    balanced = type("B", (BalancedAccept, PyWSGIServer), {"balance": mine})(
        ("127.0.0.1", 0), application=None, environ=environ)
    off = type("B", (BalancedAccept, PyWSGIServer), {"balance": None})(
        ("127.0.0.1", 0), application=None, environ=environ)
    assert (plain.max_accept, balanced.max_accept, off.max_accept) == (1, 100, 1)

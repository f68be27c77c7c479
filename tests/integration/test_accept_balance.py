"""New connections spread evenly between a gateway's workers (evgate/accept_balance.py), on a
real gunicorn with both worker classes: connections opened at once split evenly, a worker
whose connections ended takes the next ones, and a killed worker's slot is freed at once, so
its peer does not wait for it.

Which worker holds a connection is read from /proc: the server side of each established
connection (/proc/net/tcp, by the client's port) and the socket inodes of each worker's fds.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support.gateway import GatewayProcess

pytestmark = pytest.mark.integration

WAIT_MS = 10000   # long enough that a busy box never ends a wait that balance depends on


@pytest.fixture(scope="module", params=["gevent_pywsgi", "gevent"])
def gateway(request, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    gw = GatewayProcess(database_url=f"sqlite:///{tmp}/evgate.db",
                        kafka_bootstrap=kafka_bootstrap, workers=2,
                        worker_class=request.param, log_path=tmp / "gw.log",
                        env={"EVGATE_ACCEPT_BALANCE_MS": str(WAIT_MS),
                             "EVGATE_HEADER_TIMEOUT": "60"})
    gw.start()
    yield gw
    gw.stop()


def worker_pids(gw: GatewayProcess) -> list[int]:
    master = gw.proc.pid
    return [int(pid) for pid in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def holders(gw: GatewayProcess, clients: list[socket.socket]) -> dict[int, int | None]:
    """client port -> the pid of the worker holding its connection (None: not accepted)."""
    by_port = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == gw.port and fields[3] == "01":   # ESTABLISHED, server side
            by_port[int(fields[2].split(":")[1], 16)] = fields[9]
    inodes = {pid: socket_inodes(pid) for pid in worker_pids(gw)}
    result = {}
    for client in clients:
        port = client.getsockname()[1]
        inode = by_port.get(port)
        result[port] = next((pid for pid, owned in inodes.items() if inode in owned), None)
    return result


def open_at_once(gw: GatewayProcess, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", gw.port))
        clients.append(client)
    for client in clients:
        client.setblocking(True)
        client.settimeout(30)
    return clients


def all_accepted(gw: GatewayProcess, clients: list[socket.socket],
                 timeout: float = 30.0) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        held = holders(gw, clients)
        if all(pid is not None for pid in held.values()):
            return held
        if time.monotonic() > deadline:
            raise AssertionError(f"connections never accepted: {held}")
        time.sleep(0.05)


def per_worker(gw: GatewayProcess, held: dict[int, int]) -> dict[int, int]:
    counts = {pid: 0 for pid in worker_pids(gw)}
    for pid in held.values():
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def served(client: socket.socket) -> bytes:
    client.sendall(b"GET /no-such-api HTTP/1.1\r\nHost: gw\r\n\r\n")
    return client.recv(64).split(b"\r\n", 1)[0]


def close_all(clients: list[socket.socket]) -> None:
    for client in clients:
        client.close()


def wait_for_workers(gw: GatewayProcess, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(worker_pids(gw)) != count:
        assert time.monotonic() < deadline, "the master did not replace the worker"
        time.sleep(0.05)
    return worker_pids(gw)


def settle(gw: GatewayProcess) -> None:
    """Every worker serving (a killed one replaced and booted) and holding no connection."""
    wait_for_workers(gw, 2)
    deadline = time.monotonic() + 30
    while True:
        clients = open_at_once(gw, 4)
        ok = [served(client) for client in clients]
        held = all_accepted(gw, clients)
        close_all(clients)
        if len(set(held.values())) == 2:
            assert all(line.startswith(b"HTTP/1.1 404") for line in ok), ok
            break
        assert time.monotonic() < deadline, f"a worker never served: {held}"
        time.sleep(0.5)
    time.sleep(0.3)   # their closes reach the workers


def test_connections_opened_at_once_split_evenly(gateway):
    settle(gateway)
    clients = open_at_once(gateway, 20)
    try:
        counts = per_worker(gateway, all_accepted(gateway, clients))
        assert sorted(counts.values()) == [10, 10], counts
        lines = [served(client) for client in clients]
        assert all(line.startswith(b"HTTP/1.1 404") for line in lines), lines
    finally:
        close_all(clients)


def test_a_worker_whose_connections_ended_takes_the_next_ones(gateway):
    settle(gateway)
    clients = open_at_once(gateway, 8)
    try:
        held = all_accepted(gateway, clients)
        emptied = held[clients[0].getsockname()[1]]
        ended = [c for c in clients if held[c.getsockname()[1]] == emptied]
        kept = [c for c in clients if c not in ended]
        assert len(ended) == 4 and len(kept) == 4
        close_all(ended)
        time.sleep(0.3)
        fresh = open_at_once(gateway, 4)
        kept.extend(fresh)
        held = all_accepted(gateway, fresh)
        assert set(held.values()) == {emptied}, held   # 0 against 4: all of them there
    finally:
        close_all(kept)


def test_a_killed_workers_peer_does_not_wait_for_it(gateway):
    settle(gateway)
    clients = open_at_once(gateway, 4)
    late: list[socket.socket] = []
    try:
        held = all_accepted(gateway, clients)
        assert sorted(per_worker(gateway, held).values()) == [2, 2]
        fifth = open_at_once(gateway, 1)                     # 3 at one worker, 2 at the other
        clients.extend(fifth)
        survivor = all_accepted(gateway, fifth)[fifth[0].getsockname()[1]]
        victim = next(pid for pid in worker_pids(gateway) if pid != survivor)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in worker_pids(gateway):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)   # the master freed its slot right after reaping it
        # the replacement is still booting: only the survivor can take it, and it does at
        # once, although the dead worker had fewer (a slot left taken would make it wait
        # WAIT_MS, and the replacement would take it first)
        late = open_at_once(gateway, 1)
        assert set(all_accepted(gateway, late).values()) == {survivor}
        assert served(late[0]).startswith(b"HTTP/1.1 404")
    finally:
        close_all(clients + late)


def test_streams_handed_over_to_the_hub_still_count_for_their_worker(gateway_factory,
                                                                    kafka_bootstrap,
                                                                    unique_topic):
    """SSE streams on the fast path leave their server greenlet for the hub: they still
    count as their worker's connections (a worker with thousands of streams is not empty),
    until they end."""
    from tests.support.kafka_broker import create_topic
    from tests.support.streams import kafka_endpoint, stream_api
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [{"type": "sse"}], kafka_endpoint(unique_topic))],
                         workers=2, env={"EVGATE_ACCEPT_BALANCE_MS": str(WAIT_MS),
                                         "EVGATE_HEADER_TIMEOUT": "60"})
    settle(gw)
    streams = open_at_once(gw, 4)
    others: list[socket.socket] = []
    try:
        for client in streams:
            client.sendall(b"GET /s HTTP/1.1\r\nHost: gw\r\nAccept: text/event-stream\r\n\r\n")
        for client in streams:
            assert client.recv(64).startswith(b"HTTP/1.1 200"), "an SSE stream"
        held = all_accepted(gw, streams)
        assert sorted(per_worker(gw, held).values()) == [2, 2], held
        time.sleep(0.3)   # handed over by now (their server greenlets ended)
        # the streams of one worker end: the other still holds two
        emptied = held[streams[0].getsockname()[1]]
        ended = [c for c in streams if held[c.getsockname()[1]] == emptied]
        close_all(ended)
        streams = [c for c in streams if c not in ended]
        time.sleep(0.3)
        # four connections at once: two go to the worker without streams before any is
        # shared (had the streams stopped counting when handed over: 2/2)
        others = open_at_once(gw, 4)
        counts = per_worker(gw, all_accepted(gw, others))
        assert counts[emptied] == 3 and sum(counts.values()) == 4, counts
        # once the streams end they no longer count: 2 + 2 again
        close_all(streams + others)
        streams, others = [], []
        time.sleep(0.3)
        others = open_at_once(gw, 4)
        assert sorted(per_worker(gw, all_accepted(gw, others)).values()) == [2, 2]
    finally:
        close_all(streams + others)

"""A stream that took its connection over (evgate/entrypoints/detached.py), on a real socket
pair with small buffers and no greenlet of its own: what the socket cannot take waits and
goes out in order once the client reads; heartbeats come from the timer; goaway ends the
chunked body and the connection; a departed or too slow client is noticed and released; the
end is reported with the bytes written."""
from __future__ import annotations

import socket

import gevent
from gevent import socket as gsocket

from evgate.core.message import Message
from evgate.core.stream import StreamItem, Subscription
from evgate.entrypoints.detached import HEARTBEAT_CHUNK, DetachedStream
from evgate.entrypoints.direct_writer import chunk
from evgate.entrypoints.sse import _control_frame, encode_event
from tests.support.streams import dechunk, socket_pair


def _stream(subscription, server, heartbeat=60.0):
    stream = DetachedStream(subscription, server, ("sse-chunk", False, False),
                            lambda m, c: chunk(encode_event(m, c)), heartbeat, _control_frame)
    server.close()              # as the WSGI server does once the handler let go
    ends: list[int] = []
    stream.on_end(ends.append)
    stream.start()
    return stream, ends


def _item(i: int, size: int = 10) -> StreamItem:
    return StreamItem(Message(content=f"{i}:".encode() + b"x" * size, id=str(i)), str(i))


def _read_to_end(sock, timeout=10.0) -> bytes:
    received = bytearray()
    with gevent.Timeout(timeout):
        while True:
            data = sock.recv(65536)
            if not data:
                return bytes(received)
            received += data


def _ids(frames: list[bytes]) -> list[int]:
    return [int(f.split(b"data: ", 1)[1].split(b":", 1)[0]) for f in frames
            if f.startswith(b"id: ")]


def test_blocked_writes_wait_in_order_and_goaway_ends_the_body():
    server, client = socket_pair()
    subscription = Subscription(10_000, "t")
    stream, ends = _stream(subscription, server)
    delivered = []
    subscription.on_ack = lambda item: delivered.append(int(item.cursor))
    for i in range(300):                  # far more than the socket buffers hold
        subscription.offer(_item(i, 500))
        if i % 50 == 0:
            gevent.sleep(0)
    assert subscription.buffered > 0      # the socket could not take them all: buffered
    subscription.close("goaway", "bye")   # what is buffered still goes out first
    frames = dechunk(_read_to_end(client))
    assert _ids(frames) == list(range(300))
    assert frames[-2] == b"event: goaway\ndata: bye\n\n" and frames[-1] == b""
    assert delivered == list(range(300))
    assert stream.ended and ends == [stream.sent] and stream.sent > 300 * 500
    client.close()


def test_a_batch_is_one_write_and_heartbeats_come_from_the_timer():
    server, client = socket_pair()
    subscription = Subscription(100, "t")
    stream, _ = _stream(subscription, server, heartbeat=0.1)
    gevent.sleep(0)
    subscription.offer_many([_item(1), _item(2)])
    gevent.sleep(0.35)
    client.settimeout(2)
    data = client.recv(65536)
    frames = dechunk(data)
    assert _ids(frames) == [1, 2]
    assert data.count(HEARTBEAT_CHUNK) >= 2      # idle: heartbeats, not before 0.1 s
    subscription.close("closed")
    assert dechunk(_read_to_end(client))[-1] == b""
    client.close()


def test_a_client_that_leaves_is_noticed_and_released():
    server, client = socket_pair()
    subscription = Subscription(100, "t")
    stream, ends = _stream(subscription, server)
    gevent.sleep(0)
    client.close()
    with gevent.Timeout(2):
        while not stream.ended:
            gevent.sleep(0.01)
    assert subscription.closed.kind == "client-gone"
    assert ends == [0] and subscription.direct is None


def test_a_client_that_stops_reading_is_cut_as_slow():
    server, client = socket_pair()
    subscription = Subscription(20, "t")
    stream, ends = _stream(subscription, server)
    for i in range(200):
        subscription.offer(_item(i, 2000))
        gevent.sleep(0)
    assert subscription.closed is not None and subscription.closed.kind == "slow"
    with gevent.Timeout(2):
        while not stream.ended:
            gevent.sleep(0.01)
    raw = bytearray()
    client.settimeout(2)
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            raw += data
    except (ConnectionResetError, socket.timeout):
        pass
    assert b"event: goaway" not in raw and not raw.endswith(b"0\r\n\r\n")
    assert len(ends) == 1
    client.close()



def test_a_failure_on_the_hub_ends_this_stream_only():
    server, client = socket_pair()
    subscription = Subscription(100, "t")
    subscription.offer(_item(1))          # buffered before the stream starts: its drain fails

    def broken(message, cursor):
        raise ValueError("cannot encode")

    stream = DetachedStream(subscription, server, ("broken",), broken, 60.0, _control_frame)
    server.close()
    ends: list[int] = []
    stream.on_end(ends.append)
    stream.start()
    assert _read_to_end(client, timeout=2) == b""     # the connection is closed
    assert stream.ended and ends == [0]
    assert subscription.closed.kind == "error"
    client.close()


def _epoll_targets() -> set[int]:
    """The fd numbers registered in this process's epoll sets (the hub's libev loop)."""
    import os
    targets: set[int] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/self/fdinfo/{name}") as info:
                targets.update(int(line.split()[1]) for line in info if line.startswith("tfd:"))
        except OSError:
            continue
    return targets


def test_hand_over_leaves_no_epoll_registration_of_a_closed_fd():
    """The stream takes the server's fd over instead of duplicating it: with a duplicate, the
    server's close left the registration of the closed fd number in the kernel's epoll set
    (removed only when every fd of the connection is closed), and the client's leaving then
    made libev rebuild its whole epoll set, one epoll_ctl per open connection."""
    import os
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = gsocket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    reader = gevent.spawn(server.recv, 1)      # the server waits for the request: EPOLLIN
    gevent.sleep(0.05)
    client.sendall(b"G")
    assert reader.get(timeout=5) == b"G"
    server_fd = server.fileno()
    assert server_fd in _epoll_targets()
    subscription = Subscription(10, "t")
    stream, ends = _stream(subscription, server)   # closes `server` as the WSGI server does
    gevent.sleep(0.05)
    for fd in _epoll_targets():
        os.fstat(fd)        # EBADF: a registration left behind for a closed fd
    subscription.offer(_item(1))
    client.settimeout(5)
    assert b"1:" in client.recv(65536)
    client.close()
    with gevent.Timeout(5):
        while not ends:
            gevent.sleep(0.01)
    assert subscription.closed.kind == "client-gone"
    listener.close()

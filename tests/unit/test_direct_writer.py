"""The SSE fast path (evgate/entrypoints/direct_writer.py) on a real socket pair with small
buffers: frames written by the fan-out and by the client's greenlet never interleave or
reorder, partial writes are finished by the greenlet, a client that stops reading is cut as
slow, and one that left is noticed."""
from __future__ import annotations

import socket

import gevent
import pytest
from gevent import socket as gsocket

from evgate.core.stream import StreamItem, Subscription
from evgate.entrypoints.direct_writer import DirectWriter, chunk
from evgate.entrypoints.sse import _control_frame, encode_event
from evgate.core.message import Message


def _pair():
    server, client = gsocket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return server, client


def _writer(subscription: Subscription, sock) -> DirectWriter:
    return DirectWriter(subscription, sock, ("sse-chunk", False, False),
                        lambda m, c: chunk(encode_event(m, c)), heartbeat=60)


def _item(i: int, size: int) -> StreamItem:
    return StreamItem(Message(content=f"{i}:".encode() + b"x" * size, id=str(i)), str(i))


def _dechunk(raw: bytes) -> list[bytes]:
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n")
        length = int(head, 16)
        assert rest[length:length + 2] == b"\r\n", "broken chunk framing"
        out.append(rest[:length])
        raw = rest[length + 2:]
    return out



def _finish(subscription, runner, server, reader, received):
    """Close the stream with goaway, let both ends finish, return (data ids, all frames)."""
    subscription.close("goaway", "bye")
    runner.join(10)
    server.shutdown(socket.SHUT_WR)
    reader.join(10)
    frames = _dechunk(bytes(received))
    return [f.split(b"data: ", 1)[1].split(b":", 1)[0] for f in frames[:-1]], frames

def _read_all(sock, into: bytearray) -> None:
    while True:
        data = sock.recv(65536)
        if not data:
            return
        into += data
        gevent.sleep(0.001)   # a reader slower than the fan-out: partial writes happen


@pytest.mark.parametrize("size", [10, 9000, 30000])
def test_fan_out_and_greenlet_writes_keep_order_and_framing(size):
    server, client = _pair()
    subscription = Subscription(capacity=1000, label="t")
    delivered = []
    subscription.on_ack = lambda item: delivered.append(item.cursor)
    writer = _writer(subscription, server)
    runner = gevent.spawn(writer.run, _control_frame)
    received = bytearray()
    reader = gevent.spawn(_read_all, client, received)
    gevent.sleep(0.01)
    for i in range(300):
        assert subscription.offer(_item(i, size))
        if i % 3 == 0:
            # the greenlet and the reader run between small batches, so offers also arrive
            # while the greenlet is in the middle of a blocked write
            gevent.sleep(0.001)
    gevent.sleep(0.2)
    datas, frames = _finish(subscription, runner, server, reader, received)
    assert datas == [str(i).encode() for i in range(300)]
    assert frames[-1].startswith(b"event: goaway\n")
    assert delivered == [str(i) for i in range(300)]
    assert subscription.direct is None


def test_client_that_stops_reading_is_cut_as_slow():
    server, client = _pair()
    subscription = Subscription(capacity=5, label="slow")
    cut = []
    subscription.on_overflow = lambda: cut.append(True)
    runner = gevent.spawn(_writer(subscription, server).run, _control_frame)
    gevent.sleep(0.01)
    for i in range(200):
        if not subscription.offer(_item(i, 5000)):
            break
        gevent.sleep(0)
    assert subscription.closed is not None and subscription.closed.kind == "slow"
    assert cut == [True]
    server.shutdown(socket.SHUT_RDWR)   # what the entrypoint's overflow hook does
    runner.join(10)
    assert runner.dead
    client.close()


def test_client_that_left_closes_the_subscription():
    server, client = _pair()
    subscription = Subscription(capacity=100, label="gone")
    runner = gevent.spawn(_writer(subscription, server).run, _control_frame)
    gevent.sleep(0.01)
    client.close()
    for i in range(5):
        subscription.offer(_item(i, 100))
        gevent.sleep(0.01)
    runner.join(10)
    assert subscription.closed is not None and subscription.closed.kind == "client-gone"


@pytest.mark.parametrize("size", [10, 3000, 40000])
def test_fan_out_batches_go_out_joined_in_order(size):
    """`offer_many` (a consumer batch) joins the batch into one write when the client is idle;
    with small socket buffers that write is partial and the greenlet finishes it. Batches over
    JOIN_LIMIT bytes go through the buffer. Every frame arrives once, in order, acked in order."""
    server, client = _pair()
    subscription = Subscription(capacity=1000, label="t")
    delivered = []
    subscription.on_ack = lambda item: delivered.append(item.cursor)
    runner = gevent.spawn(_writer(subscription, server).run, _control_frame)
    received = bytearray()
    reader = gevent.spawn(_read_all, client, received)
    gevent.sleep(0.01)
    sent = 0
    for batch_size in [1, 2, 5, 17, 1, 40, 3, 60, 2, 9] * 3:
        subscription.offer_many([_item(sent + i, size) for i in range(batch_size)])
        sent += batch_size
        gevent.sleep(0.001)
    gevent.sleep(0.5)
    datas, frames = _finish(subscription, runner, server, reader, received)
    assert datas == [str(i).encode() for i in range(sent)]
    assert frames[-1].startswith(b"event: goaway\n")
    assert delivered == [str(i) for i in range(sent)]


def test_idle_client_gets_a_small_batch_in_one_write():
    server, client = gsocket.socketpair()
    subscription = Subscription(capacity=100, label="one-write")
    writer = _writer(subscription, server)
    runner = gevent.spawn(writer.run, _control_frame)
    gevent.sleep(0.01)
    writes = []
    real_send = writer._raw.send
    writer._raw = type("Spy", (), {"send": lambda self, data, flags: writes.append(data) or
                                   real_send(data, flags)})()
    subscription.offer_many([_item(i, 10) for i in range(5)])
    assert len(writes) == 1 and subscription.buffered == 0
    assert [f.split(b"data: ", 1)[1].split(b":", 1)[0] for f in _dechunk(writes[0])] == \
        [str(i).encode() for i in range(5)]
    subscription.close("goaway", "bye")
    runner.join(10)
    server.close()
    client.close()

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
from tests.support.streams import dechunk


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



def _finish(subscription, runner, server, reader, received):
    """Close the stream with goaway, let both ends finish, return (data ids, all frames)."""
    subscription.close("goaway", "bye")
    runner.join(10)
    server.shutdown(socket.SHUT_WR)
    reader.join(10)
    frames = dechunk(bytes(received))
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
    assert [f.split(b"data: ", 1)[1].split(b":", 1)[0] for f in dechunk(writes[0])] == \
        [str(i).encode() for i in range(5)]
    subscription.close("goaway", "bye")
    runner.join(10)
    server.close()
    client.close()


# -- WebSocket frames (evgate/entrypoints/websocket.py `_direct_loop`) ------------------------
def _ws_frames(raw: bytes) -> list[tuple[int, bytes]]:
    """(opcode byte, payload) of unmasked server frames; fails on broken framing."""
    out = []
    while raw:
        assert len(raw) >= 2, "truncated frame header"
        first, size = raw[0], raw[1]
        assert size & 0x80 == 0, "server frames are not masked"
        at = 2
        if size == 126:
            size, at = int.from_bytes(raw[2:4], "big"), 4
        elif size == 127:
            size, at = int.from_bytes(raw[2:10], "big"), 10
        assert len(raw) >= at + size, "truncated frame payload"
        out.append((first, raw[at:at + size]))
        raw = raw[at + size:]
    return out


@pytest.mark.parametrize("size", [10, 200, 70000])
def test_websocket_fan_out_and_control_frames_never_interleave(size):
    """The hub writes data frames straight to the socket while simple-websocket's reader
    writes pong replies through the same `_SendAll`: a frame the hub left half-written goes
    out whole before the pong, and the hub does not write while a pong is being written."""
    from evgate.entrypoints.websocket import _SendAll, _raw_frame
    server, client = _pair()
    proxy = _SendAll(server)
    subscription = Subscription(capacity=1000, label="ws")
    delivered = []
    subscription.on_ack = lambda item: delivered.append(item.cursor)
    writer = DirectWriter(subscription, server, ("ws-frame",), _raw_frame, None,
                          lock=proxy._writing)
    proxy.writer = writer
    runner = gevent.spawn(writer.run, lambda closed: proxy.send(b"\x88\x02\x03\xe8"))
    received = bytearray()
    reader = gevent.spawn(_read_all, client, received)
    gevent.sleep(0.01)
    pongs = []
    sent = 0
    for round_, batch_size in enumerate([1, 1, 3, 1, 7, 1, 2, 1, 1, 5] * 4):
        if round_ % 2:
            # scheduled before the fan-out's write: it runs before the writer's greenlet
            # could finish what the hub left half-written
            pongs.append(gevent.spawn(proxy.send, b"\x8a\x04pong"))
        subscription.offer_many([_item(sent + i, size) for i in range(batch_size)])
        sent += batch_size
        gevent.sleep(0)
    gevent.joinall(pongs, timeout=10)
    gevent.sleep(0.5)
    subscription.close("goaway", "bye")
    runner.join(10)
    server.shutdown(socket.SHUT_WR)
    reader.join(10)
    frames = _ws_frames(bytes(received))
    data = [payload.split(b":", 1)[0] for op, payload in frames if op == 0x81]
    assert data == [str(i).encode() for i in range(sent)]
    assert [p for op, p in frames if op == 0x8a] == [b"pong"] * len(pongs)
    assert frames[-1] == (0x88, b"\x03\xe8")
    assert {op for op, _ in frames} == {0x81, 0x8a, 0x88}
    assert delivered == [str(i) for i in range(sent)]


def test_websocket_frame_encoding():
    from evgate.entrypoints.websocket import _envelope_frame, _raw_frame, frame
    assert frame("hé") == b"\x81\x03" + "hé".encode()
    assert frame(b"\xff") == b"\x82\x01\xff"
    assert frame(None) == b""
    assert frame(b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert frame(b"x" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")
    assert _raw_frame(Message(content=b"\xff\xfe"), "c") == b"\x82\x02\xff\xfe"
    assert _raw_frame(Message(content=b"", tombstone=True), "c") == b""
    op, payload = _ws_frames(_envelope_frame(Message(content=b"hi"), "c1"))[0]
    assert op == 0x81 and payload.startswith(b'{"id":"c1","content":"hi"')


def test_websocket_control_frame_waits_for_a_half_written_data_frame():
    """The hub wrote part of a big frame (the socket buffer is small); a pong written right
    then must come after the rest of that frame, not inside it."""
    from evgate.entrypoints.websocket import _SendAll, _raw_frame
    server, client = _pair()
    proxy = _SendAll(server)
    subscription = Subscription(capacity=10, label="ws")
    writer = DirectWriter(subscription, server, ("ws-frame",), _raw_frame, None,
                          lock=proxy._writing)
    proxy.writer = writer
    runner = gevent.spawn(writer.run, lambda closed: None)
    received = bytearray()
    reader = gevent.spawn(_read_all, client, received)
    gevent.sleep(0.01)
    assert subscription.offer(_item(0, 200000))
    assert writer._pending is not None          # half-written by the hub
    proxy.send(b"\x8a\x04pong")                 # e.g. simple-websocket answering a ping
    subscription.close("goaway")
    runner.join(10)
    server.shutdown(socket.SHUT_WR)
    reader.join(10)
    frames = _ws_frames(bytes(received))
    assert [op for op, _ in frames] == [0x81, 0x8a]
    assert frames[0][1].startswith(b"0:") and len(frames[0][1]) == 200002


def test_websocket_fan_out_stops_at_a_close_frame():
    """simple-websocket answering the client's Close (possibly after a pong, in one write):
    the fan-out must not write a data frame after it (RFC 6455 5.5.1)."""
    from evgate.entrypoints.websocket import _SendAll, _raw_frame
    server, client = gsocket.socketpair()
    proxy = _SendAll(server)
    subscription = Subscription(capacity=10, label="ws")
    writer = DirectWriter(subscription, server, ("ws-frame",), _raw_frame, None,
                          lock=proxy._writing)
    proxy.writer = writer
    runner = gevent.spawn(writer.run, lambda closed: None)
    gevent.sleep(0.01)
    assert subscription.offer(_item(0, 10))
    proxy.send(b"\x8a\x00" + b"\x88\x02\x03\xe8")     # pong + close reply
    assert not subscription.offer(_item(1, 10))
    runner.join(5)
    server.shutdown(socket.SHUT_WR)
    received = bytearray()
    _read_all(client, received)
    assert [op for op, _ in _ws_frames(bytes(received))] == [0x81, 0x8a, 0x88]

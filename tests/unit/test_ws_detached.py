"""A subscriber-only WebSocket served without its greenlet (evgate/entrypoints/ws_detached.py),
on a real socket pair with small buffers; the client side parses what it gets with wsproto's
frame layer, so a frame split by a reply, or a malformed frame, fails the test. Pings are
answered (also behind a half-written frame), the closing handshake both ways, refused
client frames (too big, unmasked, bad UTF-8) end with the right code, a departed or too slow
client is released, and the handshake is RFC 6455's."""
from __future__ import annotations

import struct

import gevent
import gevent.event
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request
from wsproto.frame_protocol import Frame, FrameProtocol, Opcode

from evgate.core.message import Message
from evgate.core.stream import StreamItem, Subscription
from evgate.entrypoints import ws_detached
from evgate.entrypoints.websocket import _raw_frame
from evgate.entrypoints.ws_detached import DetachedWebSocket, accept_key, close_frame, handshake
from evgate.errors import BadRequestError
from tests.support.streams import assert_fd_released, fd_identity, socket_pair

HEAD = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"


def _open(subscription, server, max_message=1000):
    stream = DetachedWebSocket(subscription, server, ("ws-frame",), _raw_frame, max_message)
    server.close()              # as the WSGI server does once the handler let go
    ends: list[int] = []
    stream.on_end(ends.append)
    stream.open(HEAD)
    return stream, ends


def _item(i: int, size: int = 10) -> StreamItem:
    return StreamItem(Message(content=f"{i}:".encode() + b"x" * size, id=str(i)), str(i))


class Client:
    """The client's end: masked frames out, server frames parsed by wsproto."""

    def __init__(self, sock):
        self.sock = sock
        self.proto = FrameProtocol(client=True, extensions=[])
        self.head = b""
        self.frames: list = []
        self._partial = None

    def send(self, data: bytes) -> None:
        self.sock.sendall(bytes(data))

    def read(self, until, timeout=5.0) -> list:
        """Frames until `until(frames)` holds, or the end of the connection."""
        with gevent.Timeout(timeout):
            while not until(self.frames):
                data = self.sock.recv(65536)
                if not data:
                    break
                if not self.head.endswith(b"\r\n\r\n"):
                    self.head += data
                    if b"\r\n\r\n" not in self.head:
                        continue
                    self.head, data = self.head.split(b"\r\n\r\n", 1)
                    self.head += b"\r\n\r\n"
                self.proto.receive_bytes(data)
                for frame in self.proto.received_frames():
                    self._add(frame)
        return self.frames

    def _add(self, frame) -> None:
        """wsproto yields a frame in parts as its bytes arrive: whole messages here."""
        if frame.opcode.iscontrol():
            self.frames.append(frame)
            return
        if self._partial is None:
            self._partial = Frame(frame.opcode, frame.payload, True, True)
        else:
            self._partial = self._partial._replace(
                payload=self._partial.payload + frame.payload)
        if frame.message_finished:
            self.frames.append(self._partial)
            self._partial = None

    def eof(self, timeout=5.0) -> bool:
        with gevent.Timeout(timeout):
            while True:
                try:
                    data = self.sock.recv(65536)
                except ConnectionResetError:
                    return True
                if not data:
                    return True


def _has(opcode):
    return lambda frames: any(f.opcode is opcode for f in frames)


def _texts(frames) -> list[str]:
    return [f.payload for f in frames if f.opcode is Opcode.TEXT]


def test_rfc_6455_accept_key_and_refused_handshakes():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="   # 1.3
    good = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

    def request(protocol="HTTP/1.1", **changes):
        headers = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return Request(EnvironBuilder(headers=headers, environ_overrides={
            "SERVER_PROTOCOL": protocol}).get_environ())

    head = handshake(request())
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    assert head.endswith(b"\r\n\r\n") and b"Extensions" not in head   # nothing negotiated
    refused = {
        "Sec-WebSocket-Version must be 13": [request(**{"Sec-WebSocket-Version": "8"}),
                                             request(**{"Sec-WebSocket-Version": None})],
        "Sec-WebSocket-Key must be 16 bytes": [request(**{"Sec-WebSocket-Key": "c2hvcnQ="}),
                                               request(**{"Sec-WebSocket-Key": "!" * 24}),
                                               request(**{"Sec-WebSocket-Key": None})],
        "Connection must contain 'Upgrade'": [request(Connection="keep-alive")],
        "must be HTTP/1.1": [request(protocol="HTTP/1.0")],
    }
    for message, requests in refused.items():
        for bad in requests:
            with pytest.raises(BadRequestError, match=message) as caught:
                handshake(bad)
            assert caught.value.status == 400
            assert caught.value.key == "INVALID_WEBSOCKET_HANDSHAKE"


def test_close_frame_reason_is_cut_to_a_control_frame_on_a_character_boundary():
    frame = close_frame(1001, "é" * 100)
    assert frame[0] == 0x88 and frame[1] <= 125
    assert struct.unpack("!H", frame[2:4])[0] == 1001
    frame[4:].decode("utf-8")


def test_ping_answered_client_data_ignored_and_client_close_echoed():
    server, sock = socket_pair()
    subscription = Subscription(100, "t")
    stream, ends = _open(subscription, server)
    client = Client(sock)
    subscription.offer(_item(0))
    client.read(lambda f: len(_texts(f)) == 1)
    assert client.head == HEAD
    mask = FrameProtocol(client=True, extensions=[])
    client.send(mask.ping(b"are you there"))
    client.send(mask.send_data("ignored on a subscriber-only socket"))
    client.send(mask.send_data(b"\x00binary too"))
    pong = client.read(_has(Opcode.PONG))[-1]
    assert pong.opcode is Opcode.PONG and pong.payload == b"are you there"
    subscription.offer(_item(1))
    client.read(lambda f: len(_texts(f)) == 2)
    assert _texts(client.frames) == ["0:" + "x" * 10, "1:" + "x" * 10]
    client.send(mask.close(4000, "bye"))
    frames = client.read(_has(Opcode.CLOSE))
    assert frames[-1].payload[0] == 4000          # the client's code echoed
    assert client.eof()                           # then the server closed the connection
    assert stream.ended and subscription.closed.kind == "client-gone"
    assert ends == [stream.sent] and stream._raw.fileno() == -1
    sock.close()


def test_pong_goes_after_a_half_written_frame_never_inside_it():
    server, sock = socket_pair()
    subscription = Subscription(10_000, "t")
    stream, _ = _open(subscription, server)
    for i in range(40):                           # far more than the socket buffers hold
        subscription.offer(_item(i, 3000))
    gevent.sleep(0.05)
    assert stream._pending is not None or subscription.buffered
    mask = FrameProtocol(client=True, extensions=[])
    for n in range(3):
        sock.sendall(bytes(mask.ping(b"p%d" % n)))
    gevent.sleep(0.05)
    client = Client(sock)
    frames = client.read(lambda f: len(_texts(f)) == 40
                         and sum(x.opcode is Opcode.PONG for x in f) == 3)
    assert [t.split(":")[0] for t in _texts(frames)] == [str(i) for i in range(40)]
    assert [f.payload for f in frames if f.opcode is Opcode.PONG] == [b"p0", b"p1", b"p2"]
    assert not stream.ended
    subscription.close("closed")
    sock.close()


def test_goaway_closes_with_1001_after_the_buffered_frames_and_waits_for_the_answer():
    server, sock = socket_pair()
    subscription = Subscription(10_000, "t")
    stream, ends = _open(subscription, server)
    for i in range(30):
        subscription.offer(_item(i, 2000))
    subscription.close("goaway", "the gateway is stopping")
    client = Client(sock)
    frames = client.read(_has(Opcode.CLOSE))
    assert [t.split(":")[0] for t in _texts(frames)] == [str(i) for i in range(30)]
    assert frames[-1].payload == (1001, "the gateway is stopping")
    assert not stream.ended                       # waiting for the client's Close
    client.send(FrameProtocol(client=True, extensions=[]).close(1001))
    assert client.eof(timeout=0.5)                # answered: closed at once
    assert stream.ended and ends == [stream.sent]
    sock.close()


def test_a_client_that_never_answers_our_close_is_closed_after_close_wait(monkeypatch):
    monkeypatch.setattr(ws_detached, "CLOSE_WAIT", 0.2)
    server, sock = socket_pair()
    subscription = Subscription(100, "t")
    stream, _ = _open(subscription, server)
    subscription.close("error", "Kafka is unavailable")
    client = Client(sock)
    assert client.read(_has(Opcode.CLOSE))[-1].payload[0] == 1011
    assert client.eof(timeout=2)
    assert stream.ended
    sock.close()


@pytest.mark.parametrize("bad, code", [
    ("too big", 1009), ("unmasked", 1002), ("bad utf-8", 1007), ("reserved bits", 1002)])
def test_refused_client_frames_close_with_their_code(bad, code):
    server, sock = socket_pair()
    subscription = Subscription(100, "t")
    stream, ends = _open(subscription, server, max_message=1000)
    mask = FrameProtocol(client=True, extensions=[])
    data = {
        # one message of 1200 bytes in three frames: over the limit only as a whole
        "too big": b"".join(bytes(mask.send_data(b"y" * 400, fin=i == 2)) for i in range(3)),
        "unmasked": b"\x81\x02hi",
        "bad utf-8": bytes(mask.send_data(b"\xff\xfe")).replace(b"\x82", b"\x81", 1),
        "reserved bits": b"\xc1" + bytes(mask.send_data("x"))[1:],
    }[bad]
    sock.sendall(data)
    client = Client(sock)
    frames = client.read(_has(Opcode.CLOSE))
    assert frames[-1].payload[0] == code
    if bad == "too big":                          # the frame layer still works: handshake
        sock.sendall(bytes(mask.close(1000)))
    assert client.eof(timeout=3)
    assert stream.ended and subscription.closed is not None and ends
    sock.close()


def test_departed_client_is_released_at_once():
    server, sock = socket_pair()
    subscription = Subscription(100, "t")
    stream, ends = _open(subscription, server)
    fd = stream._raw.fileno()
    identity = fd_identity(fd)
    sock.close()
    with gevent.Timeout(2):
        while not stream.ended:
            gevent.sleep(0.01)
    assert subscription.closed.kind == "client-gone" and ends
    assert_fd_released(fd, identity)               # closed, not leaked


def test_too_slow_client_is_cut():
    server, sock = socket_pair()
    subscription = Subscription(5, "t")
    stream, _ = _open(subscription, server)
    for i in range(100):
        subscription.offer(_item(i, 3000))
        gevent.sleep(0)
    assert subscription.closed.kind == "slow"
    with gevent.Timeout(2):
        while not stream.ended:
            gevent.sleep(0.01)
    assert Client(sock).eof()
    sock.close()


def test_client_gone_mid_write_releases_the_stream_and_its_fd():
    server, sock = socket_pair()
    subscription = Subscription(10_000, "t")
    stream, ends = _open(subscription, server)
    fd = stream._raw.fileno()
    identity = fd_identity(fd)
    for i in range(40):                           # the socket is full: a write is pending
        subscription.offer(_item(i, 3000))
    gevent.sleep(0.05)
    assert stream._pending is not None and stream._writer is not None
    sock.close()                                  # gone without a Close, mid-frame
    with gevent.Timeout(2):
        while not stream.ended:
            gevent.sleep(0.01)
    assert subscription.closed.kind == "client-gone" and ends == [stream.sent]
    assert stream._writer is None and stream._reader is None and stream._pending is None
    assert_fd_released(fd, identity)


# -- publisher sockets: inbound frames published in order, reads paused meanwhile ----------

class FakePublish:
    """A publish that blocks its greenlet until `gate` is set (the broker's acknowledgement),
    records what it got and fails on the contents in `fail`."""

    def __init__(self, fail=()):
        self.gate = gevent.event.Event()
        self.calls: list[bytes] = []
        self.fail = set(fail)

    def __call__(self, content: bytes) -> bool:
        self.calls.append(content)
        self.gate.wait()
        return content not in self.fail


def _open_publisher(subscription, server, publish, max_message=1000):
    stream = DetachedWebSocket(subscription, server, ("ws-frame",), _raw_frame, max_message,
                               publish)
    server.close()
    ends: list[int] = []
    stream.on_end(ends.append)
    stream.open(HEAD)
    return stream, ends


def _publisher_socket(publish=None, max_message=1000):
    """A handed-over publisher socket and its client's end: (client socket, subscription,
    publish, stream, its `on_end` calls, the client's frame masker)."""
    server, sock = socket_pair()
    subscription = Subscription(100, "t")
    publish = publish or FakePublish()
    stream, ends = _open_publisher(subscription, server, publish, max_message)
    return sock, subscription, publish, stream, ends, FrameProtocol(client=True, extensions=[])


def _until(condition, timeout=3.0):
    with gevent.Timeout(timeout):
        while not condition():
            gevent.sleep(0.01)


def test_a_fast_sender_is_not_read_while_its_frame_is_published_then_all_go_in_order():
    sock, subscription, publish, stream, _, mask = _publisher_socket()
    sock.sendall(bytes(mask.send_data("first")))
    _until(lambda: publish.calls == [b"first"])
    assert stream._publisher is not None and not stream._reader.active   # reads paused
    for i in range(200):                            # a fast sender: text, binary, fragmented
        if i % 3 == 0:
            data = bytes(mask.send_data(f"m{i}-a", fin=False)) + bytes(
                mask.send_data("-b", fin=True))
        elif i % 3 == 1:
            data = bytes(mask.send_data(f"m{i}".encode() + b"\xff"))
        else:
            data = bytes(mask.send_data(f"m{i}"))
        sock.sendall(data)
    gevent.sleep(0.1)
    assert publish.calls == [b"first"] and list(stream._inbound) == [b"first"]   # not read
    publish.gate.set()
    expected = [b"first"] + [
        f"m{i}-a-b".encode() if i % 3 == 0 else f"m{i}".encode() + (b"\xff" if i % 3 == 1
                                                                   else b"")
        for i in range(200)]
    _until(lambda: len(publish.calls) == len(expected))
    gevent.sleep(0.05)
    assert publish.calls == expected               # in order, each once
    _until(lambda: stream._publisher is None)      # no greenlet once everything settled
    assert stream._reader.active and not stream.ended
    subscription.offer(_item(0))                   # still a subscriber
    client = Client(sock)
    assert _texts(client.read(lambda f: len(_texts(f)) == 1)) == ["0:" + "x" * 10]
    subscription.close("closed")
    sock.close()


def test_a_failed_publish_closes_with_1011_and_publishes_nothing_after_it():
    sock, subscription, publish, stream, ends, mask = _publisher_socket(
        FakePublish(fail={b"bad"}))
    publish.gate.set()
    sock.sendall(b"".join(bytes(mask.send_data(t)) for t in ("ok", "bad", "after")))
    client = Client(sock)
    close = client.read(_has(Opcode.CLOSE))[-1]
    assert close.payload == (1011, "the message could not be produced")
    assert publish.calls == [b"ok", b"bad"]
    assert subscription.closed.kind == "closed"
    sock.sendall(bytes(mask.send_data("ignored after our Close")) + bytes(mask.close(1011)))
    assert client.eof(timeout=2)                   # the client's answer ends it at once
    assert stream.ended and ends and publish.calls == [b"ok", b"bad"]
    sock.close()


def test_an_oversized_message_is_closed_with_1009_and_never_published():
    sock, subscription, publish, stream, _, mask = _publisher_socket()
    publish.gate.set()
    sock.sendall(bytes(mask.send_data("small")))
    _until(lambda: publish.calls == [b"small"])
    # 1200 bytes in three frames: each under the limit, the message over it
    sock.sendall(b"".join(bytes(mask.send_data(b"y" * 400, fin=i == 2)) for i in range(3)))
    client = Client(sock)
    assert client.read(_has(Opcode.CLOSE))[-1].payload[0] == 1009
    sock.sendall(bytes(mask.close(1000)))
    assert client.eof(timeout=3)
    assert publish.calls == [b"small"] and stream.ended
    sock.close()


def test_the_clients_close_is_answered_after_what_it_sent_before_is_published():
    sock, subscription, publish, stream, ends, mask = _publisher_socket()
    sock.sendall(bytes(mask.send_data("one")) + bytes(mask.send_data("two"))
                 + bytes(mask.close(1000, "done")))
    _until(lambda: publish.calls == [b"one"])
    gevent.sleep(0.05)
    client = Client(sock)
    client.head = sock.recv(len(HEAD))
    assert client.head == HEAD
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(10)                              # no Close answered yet
    sock.setblocking(True)
    publish.gate.set()
    assert client.read(_has(Opcode.CLOSE))[-1].payload[0] == 1000
    assert client.eof()
    assert publish.calls == [b"one", b"two"] and stream.ended and ends == [stream.sent]
    sock.close()


def test_a_stream_ended_while_publishing_stays_in_flight_until_the_publish_settles():
    sock, subscription, publish, stream, ends, mask = _publisher_socket()
    sock.sendall(bytes(mask.send_data("one")) + bytes(mask.send_data("two")))
    _until(lambda: publish.calls == [b"one"])
    subscription.close("goaway", "the gateway is stopping")   # drain: 1001 and then the end
    client = Client(sock)
    assert client.read(_has(Opcode.CLOSE))[-1].payload[0] == 1001
    sock.close()                                   # gone without answering
    gevent.sleep(0.05)
    stream._tick()                                 # CLOSE_WAIT over: the fd is closed
    assert stream.ended and ends == []             # but still in flight: access log, drain
    publish.gate.set()
    _until(lambda: ends == [stream.sent])
    assert publish.calls == [b"one", b"two"] and stream._publisher is None

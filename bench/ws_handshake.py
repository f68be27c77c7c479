"""WebSocket upgrade cost per request: simple-websocket's Server (h11 + wsproto handshake, its
reader started) against evgate's own 101 (evgate/entrypoints/ws_detached.py `handshake`: the
checks, the accept key, one write), on a socket pair, in one invocation, two rounds each.
Not a test: no thresholds.

    .venv/bin/python bench/ws_handshake.py 2000
"""
from gevent import monkey

monkey.patch_all()   # as in gunicorn's gevent workers: simple-websocket's reader is a greenlet

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simple_websocket import Server  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402
from werkzeug.wrappers import Request  # noqa: E402

from evgate.entrypoints.ws_detached import handshake  # noqa: E402

HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Host": "127.0.0.1"}


def _environ(sock: socket.socket) -> dict:
    environ = EnvironBuilder(path="/ws", headers=HEADERS, environ_overrides={
        "SERVER_PROTOCOL": "HTTP/1.1"}).get_environ()
    environ["gunicorn.socket"] = sock
    return environ


def run(kind: str, n: int) -> float:
    """Microseconds per upgrade, from the environ to the 101 written."""
    total = 0.0
    for _ in range(n):
        server, client = socket.socketpair()
        environ = _environ(server)
        started = time.perf_counter()
        if kind == "simple_websocket":
            ws = Server(environ, ping_interval=None, max_message_size=1 << 20)
        else:
            server.sendall(handshake(Request(environ)))
        total += time.perf_counter() - started
        assert client.recv(4096).startswith(b"HTTP/1.1 101")
        client.close()
        if kind == "simple_websocket":
            ws.thread.join(1)
        server.close()
    return round(total / n * 1e6, 1)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    report: dict = {}
    for round_ in range(2):
        for kind in ("simple_websocket", "evgate"):
            report.setdefault(kind, []).append(run(kind, n))
    print(json.dumps({"upgrades": n, "us_per_upgrade": report}))


if __name__ == "__main__":
    main()

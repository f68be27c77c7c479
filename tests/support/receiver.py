"""A real local webhook receiver whose behaviour a test scripts.

    with Receiver() as rx:
        rx.script(500, 500, ("hang", 3.0), 400)   # the next four answers, then `rx.default`
        rx.script(("redirect", 302, "http://169.254.169.254/"))  # a 3xx with a Location
        rx.script(("drip", 2.0, 10))              # 200 whose 10-byte body comes 1 byte / 2 s
        ...
        rx.down(); ...; rx.up()                   # connection refused meanwhile, same port
        rx.wait_for(lambda r: len(r.ok()) >= 10)  # polls, no timing assertion

Every request is recorded (`rx.requests`: method, path, lower-cased headers, body, the status
it was answered, when); `ok()` lists those answered 2xx. Binds 127.0.0.1 on a free port; each
request runs on its own thread, so a hanging answer does not block the others.
"""
from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from tests.support.gateway import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that went away (timeout, reset, kill): not a receiver error
        super().handle_error(request, client_address)


class Receiver:
    def __init__(self, port: int | None = None, default: Any = 200):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.default = default
        self.requests: list[Received] = []
        self._script: deque[Any] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- scripting ---------------------------------------------------------------------------
    def script(self, *actions: Any) -> None:
        """Queue answers: an int status, ("hang", seconds) then 200, ("redirect", status,
        location), ("drip", seconds per byte, body length) (a 200 whose body trickles in), or
        a callable(handler, body) returning a status, (status, reply body) or one of those
        actions."""
        with self._lock:
            self._script.extend(actions)

    def fail_times(self, count: int, status: int = 500) -> None:
        self.script(*([status] * count))

    def _next_action(self) -> Any:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # -- results -----------------------------------------------------------------------------
    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def bodies(self) -> list[bytes]:
        return [r.body for r in self.ok()]

    def wait_for(self, predicate: Callable[["Receiver"], bool], timeout: float = 60.0,
                 interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(interval)
        return predicate(self)

    # -- server ------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out as separate writes: without NODELAY, Nagle plus the
                # client's delayed ACK add ~40 ms to every keep-alive request
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with receiver._lock:
                    receiver._connections.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = receiver._next_action()
                if callable(action):  # may answer a status, (status, body) or an action
                    action = action(self, body)
                    if isinstance(action, tuple) and not isinstance(action[0], str):
                        action = ("reply", *action)
                status, reply, extra, drip = 200, None, {}, 0.0
                if isinstance(action, tuple) and action[0] == "reply":
                    status, reply = int(action[1]), action[2]
                elif isinstance(action, tuple) and action[0] == "hang":
                    time.sleep(action[1])
                elif isinstance(action, tuple) and action[0] == "redirect":
                    status, extra = int(action[1]), {"Location": action[2]}
                elif isinstance(action, tuple) and action[0] == "drip":
                    drip, reply = float(action[1]), b"x" * int(action[2])
                else:
                    status = int(action)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Received("POST", self.path, headers, body, status))
                if reply is None:
                    reply = b"{}" if status < 300 else b'{"error":"scripted"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if drip:
                        self.wfile.flush()
                        for i in range(len(reply)):
                            time.sleep(drip)
                            self.wfile.write(reply[i:i + 1])
                            self.wfile.flush()
                    else:
                        self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout): recorded anyway

            do_PUT = do_POST

        return Handler

    def up(self) -> "Receiver":
        server = _Server(("127.0.0.1", self.port), self._handler())
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:  # keep-alive connections too: "down" means refused and reset
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    start, stop = up, down

    def __enter__(self) -> "Receiver":
        return self.up()

    def __exit__(self, *exc: Any) -> None:
        self.down()

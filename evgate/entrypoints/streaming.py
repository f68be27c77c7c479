"""What the streaming entrypoints (sse, websocket, http-get) share.

- `open_subscription`: reads the client identifier and asks the API's pipeline
  (evgate/gateway/pipeline.py `open_stream`) for a subscription: bounded buffer, registered
  with the runtime so that shutdown can say goodbye (`event: goaway`, WebSocket 1001).
- `client_socket` / `watch_client`: a closed connection must free its greenlet, buffer and (if
  it was the last) its consumer within a second. `GeneratorExit` only comes when a write fails,
  seconds later, so a read watcher on the client socket's fd (a libev io watcher: no greenlet,
  ~10 KiB less per idle client than a watcher greenlet with its stack) peeks one byte when the
  socket becomes readable: b"" means the client left. The socket is `environ["gunicorn.sock"]`
  under gunicorn's `gevent_pywsgi` worker (its PyWSGIHandler.get_environ) and
  `environ["gunicorn.socket"]` under the `gevent` worker (gunicorn/http/wsgi.py).
- `SubscribeView`: runs the API's `subscribe` flow phase for one client. Policies may filter
  per client (they see the client's context), so it runs per client; when no step applies, the
  message passes unchanged and the frame encoded once for everybody is reused, and the view
  keeps no reference to the request (an idle stream should not hold the request's objects).
  A message is copied before a policy sees it, so a policy never changes what other clients
  receive.
"""
from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any, Callable

import gevent

from ..core.stream import Subscription
from ..errors import BadRequestError
from ..core.message import Message

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from .base import Entrypoint

logger = logging.getLogger(__name__)

CLIENT_ID_HEADER = "X-Gravitee-Client-Identifier"
_CLIENT_ID_MAX = 200


def client_identifier(ctx: "ExecutionContext") -> str | None:
    value = ctx.request.headers.get(CLIENT_ID_HEADER) if ctx.request is not None else None
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > _CLIENT_ID_MAX or not value.isprintable():
        raise BadRequestError(f"{CLIENT_ID_HEADER} must be 1-{_CLIENT_ID_MAX} printable "
                              "characters", key="INVALID_CLIENT_IDENTIFIER")
    return value


def open_subscription(entrypoint: "Entrypoint", ctx: "ExecutionContext",
                      cursor: str | None) -> Subscription:
    """The client's stream from `cursor`, opened by the API's pipeline (`open_stream`), with
    the client identifier read from the request."""
    return entrypoint.api.open_stream(entrypoint, ctx, cursor, client_id=client_identifier(ctx))


def client_socket(environ: dict[str, Any]) -> Any:
    for key in ("gunicorn.sock", "gunicorn.socket"):
        sock = environ.get(key)
        if sock is not None:
            return sock
    return None


def is_plain_tcp(sock: Any) -> bool:
    """True for a socket without TLS. The fast paths write to the real socket under gevent's
    wrapper; on a TLS connection (gunicorn started with a certificate) that would bypass the
    encryption, so such connections keep the server's own writes."""
    return sock is not None and not hasattr(sock, "cipher")


class ClientWatch:
    """Calls `on_gone()` (on the hub) as soon as the client closes its side of the socket."""

    __slots__ = ("_raw", "_watcher", "_on_gone")

    def __init__(self, sock: Any, on_gone: Callable[[], None]):
        # The real socket under gevent's wrapper: peeked without blocking, from the hub.
        self._raw = getattr(sock, "_sock", sock)
        self._on_gone = on_gone
        self._watcher = gevent.get_hub().loop.io(sock.fileno(), 1)   # 1: readable
        self._watcher.start(self._readable)

    def _readable(self) -> None:
        try:
            data = self._raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return   # a spurious wake-up
        except OSError:
            data = b""
        self.stop()
        if data:
            return   # the client sent something (a pipelined request?): writes will tell
        try:
            self._on_gone()
        except Exception:  # noqa: BLE001 - runs on the hub: never let it raise there
            logger.exception("closing the stream of a departed client failed")

    def stop(self) -> None:
        """Idempotent; must be called before the server reuses or closes the socket."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()


def watch_client(sock: Any, on_gone: Callable[[], None]) -> ClientWatch | None:
    if sock is None:
        return None
    try:
        return ClientWatch(sock, on_gone)
    except (OSError, ValueError):   # no usable fd (closed already)
        on_gone()
        return None


def cut_connection(sock: Any) -> Callable[[], None]:
    """An overflow hook: shut the socket down, which also fails a write stuck on it."""
    def cut() -> None:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    return cut


class SubscribeView:
    """The subscribe flow phase for one client (see the module docstring)."""

    __slots__ = ("ctx", "active")

    def __init__(self, ctx: "ExecutionContext"):
        api = ctx.api
        # the API's flows, then the flows of the client's plan (the gateway's pipeline)
        self.active = api.has_message_steps(ctx, "subscribe")
        self.ctx = ctx if self.active else None

    def messages(self, message: Message) -> list[Message]:
        if not self.active:
            return [message]
        return self.ctx.api.subscribe_messages([_copy(message)], self.ctx)


def _copy(message: Message) -> Message:
    return Message(content=message.content,
                   headers={k: list(v) for k, v in message.headers.items()},
                   metadata=dict(message.metadata), attributes=dict(message.attributes),
                   id=message.id, error=message.error, tombstone=message.tombstone)

"""WSGI middleware around the gateway: access log, request metrics, and the connection
bookkeeping a graceful drain needs.

A request is finished when the server closes its response iterable (WSGI `close()`), so a
stream is logged and counted when it ends, with its whole duration and the bytes written
(also one that took its connection over from the server, `evgate.detached`).
The dispatcher (evgate/app.py) leaves the API id, entrypoint and transaction id in the
environ (`evgate.api_id`, `evgate.entrypoint`, `evgate.transaction_id`).

`ConnectionTracker` knows which client sockets are in a request right now. On SIGTERM the
runtime waits for those to finish, then shuts the read side of the others: an idle
keep-alive connection (a load balancer's, a Prometheus scraper's) would otherwise hold the
worker until gunicorn's graceful timeout, because gunicorn waits for every connection.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Iterator

import gevent

from .. import accept_balance
from ..logs import ACCESS_LOGGER, AccessLine, access_handler
from . import metrics

access_logger = logging.getLogger(ACCESS_LOGGER)
logger = logging.getLogger(__name__)


def _client_socket(environ: dict[str, Any]) -> Any:
    return environ.get("gunicorn.sock") or environ.get("gunicorn.socket")


class ConnectionTracker:
    def __init__(self) -> None:
        self.active = 0
        self._sockets: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._busy: dict[int, int] = {}

    def begin(self, sock: Any) -> None:
        self.active += 1
        if sock is not None:
            try:
                # a keep-alive connection's socket is known after its first request: asking
                # is cheaper than adding (WeakSet.add makes a weakref with a callback each time)
                if sock not in self._sockets:
                    self._sockets.add(sock)
            except TypeError:
                return
            self._busy[id(sock)] = self._busy.get(id(sock), 0) + 1

    def end(self, sock: Any) -> None:
        self.active -= 1
        if sock is not None:
            count = self._busy.get(id(sock), 0) - 1
            if count > 0:
                self._busy[id(sock)] = count
            else:
                self._busy.pop(id(sock), None)

    def wait_quiet(self, timeout: float) -> bool:
        """Wait (cooperatively) until no request is in flight; False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        while self.active > 0:
            if time.monotonic() >= deadline:
                return False
            gevent.sleep(0.05)
        return True

    def close_idle(self) -> int:
        """Shut the read side of every connection not in a request (its server greenlet sees
        EOF and ends the connection; anything still being written goes out first)."""
        closed = 0
        for sock in list(self._sockets):
            if id(sock) in self._busy:
                continue
            try:
                sock.shutdown(socket.SHUT_RD)
                closed += 1
            except OSError:
                pass
        return closed


class RequestObserver:
    def __init__(self, app: Callable, tracker: ConnectionTracker, *, access_log: bool = True):
        self.app = app
        self.tracker = tracker
        self.access_log = access_log

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        sock = _client_socket(environ)
        status: list[Any] = [None]

        def observe_start(status_line: str, headers: list, exc_info: Any = None) -> Callable:
            status[0] = status_line
            return start_response(status_line, headers, exc_info)

        self.tracker.begin(sock)
        try:
            result = self.app(environ, observe_start)
        except BaseException:
            # flask-sock's StopIteration (WebSocket done under the `gevent` worker) or a crash
            upgraded = environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            self._finish(environ, sock, started, status[0] or ("101" if upgraded else "500"),
                         None)
            raise
        if environ.get("evgate.close_connection"):
            _end_keep_alive(start_response)
        return _ObservedBody(result, lambda size: self._finish(environ, sock, started,
                                                               status[0], size))

    def _finish(self, environ: dict[str, Any], sock: Any, started: float, status_line: Any,
                size: int | None) -> None:
        detached = environ.pop("evgate.detached", None)
        if detached is not None:
            # a stream that took its connection over (evgate/entrypoints/detached.py) goes on
            # without the server: logged and counted when it ends, in flight until then, and
            # still this worker's connection for the accept balance
            self.tracker.end(sock)
            self.tracker.begin(None)
            release = accept_balance.hold()
            kept = {key: environ[key] for key in _LOGGED if key in environ}

            def ended(sent: int) -> None:
                release()
                self._finish(kept, None, started, status_line, (size or 0) + sent)
            detached.on_end(ended)
            return
        self.tracker.end(sock)
        if environ.get("evgate.node"):
            return
        try:
            code = _status_code(status_line, environ)
            api = environ.get("evgate.api_id")
            entrypoint = environ.get("evgate.entrypoint")
            metrics.count_request(api, entrypoint, code)
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                path = environ.get("PATH_INFO", "")
                query = environ.get("QUERY_STRING")
                fields = {
                    "method": environ.get("REQUEST_METHOD"),
                    "path": f"{path}?{query}" if query else path,
                    "status": code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 3),
                    "bytes": size,
                    "api_id": api,
                    "entrypoint": entrypoint,
                    "transaction_id": environ.get("evgate.transaction_id"),
                    "client": environ.get("REMOTE_ADDR"),
                }
                handler = access_handler() if fields["transaction_id"] is not None else None
                if handler is not None:
                    # the one handler a record would reach, evgate's batching one: the line
                    # is queued without a LogRecord and formatted at its flush
                    handler.queue_access(time.time(), fields)
                else:
                    # the record made directly (no caller lookup: the line says where it is
                    # from), its text formatted only when a handler writes it
                    access_logger.handle(_access_record(fields))
        except Exception:  # noqa: BLE001 - observing must never fail a response
            logger.debug("access log / metrics failed", exc_info=True)


#: what `_finish` reads of the environ
_LOGGED = ("evgate.node", "evgate.api_id", "evgate.entrypoint", "evgate.transaction_id",
           "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "REMOTE_ADDR", "HTTP_UPGRADE")


class _RecordTemplate:
    """The attributes every access record of this process shares, taken once from a real
    `LogRecord` (again after a fork: `process` changes)."""

    attributes: dict[str, Any] | None = None


def _forget_template() -> None:
    _RecordTemplate.attributes = None


os.register_at_fork(after_in_child=_forget_template)


def _access_record(fields: dict[str, Any]) -> logging.LogRecord:
    """The access line's record: what `makeRecord(..., extra=fields)` returns, at about a
    third of its cost (LogRecord.__init__ recomputes file, module and process names for every
    record: ~5 us of each request's CPU, bench/ingest.py). A custom record factory
    (`logging.setLogRecordFactory`) is honoured by taking the ordinary way."""
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return access_logger.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "%s",
                                        (AccessLine(fields),), None, extra=fields)
    template = _RecordTemplate.attributes
    if template is None:
        template = _RecordTemplate.attributes = dict(logging.LogRecord(
            ACCESS_LOGGER, logging.INFO, __file__, 0, "%s", (), None).__dict__)
    record = logging.LogRecord.__new__(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(template)
    now = time.time()
    attributes["created"] = now
    attributes["msecs"] = int((now - int(now)) * 1000) + 0.0
    attributes["relativeCreated"] = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
    if logging.logThreads:
        attributes["thread"] = threading.get_ident()
        attributes["threadName"] = threading.current_thread().name
    attributes["args"] = (AccessLine(fields),)
    attributes.update(fields)
    return record


def _end_keep_alive(start_response: Callable) -> None:
    """No further request on this connection (`evgate.close_connection` in the environ: a
    WebSocket took it over). gevent's pywsgi would otherwise read what the client sends next
    (its close frame, say) as a new HTTP request; its `start_response` is a method of the
    connection's handler, whose `close_connection` ends keep-alive. gunicorn's `gevent`
    worker closes after the WebSocket's StopIteration by itself."""
    handler = getattr(start_response, "__self__", None)
    if handler is not None and hasattr(handler, "close_connection"):
        handler.close_connection = True


def _status_code(status_line: Any, environ: dict[str, Any]) -> int:
    if status_line is None:
        # no start_response: a WebSocket taken over by simple-websocket under pywsgi
        return 101 if environ.get("HTTP_UPGRADE", "").lower() == "websocket" else 0
    try:
        return int(str(status_line).split(" ", 1)[0])
    except ValueError:
        return 0


class _ObservedBody:
    """The response iterable, counting bytes; `close()` finishes the request once."""

    def __init__(self, result: Iterable[bytes], on_close: Callable[[int | None], None]):
        self._result = result
        self._on_close = on_close
        self._size = 0
        self._iterated = False

    def __iter__(self) -> Iterator[bytes]:
        self._iterated = True
        for chunk in self._result:
            self._size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close(self._size if self._iterated else None)

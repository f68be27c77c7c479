"""evgate's gunicorn worker classes: gunicorn's gevent workers with strict HTTP framing and a
request-head timeout (evgate/http_framing.py has the rules).

- `StrictPyWSGIWorker` (EVGATE_WORKER_CLASS=gevent_pywsgi): gevent's pywsgi parses loosely
  (two Content-Length headers, a bare LF, obs-fold, `Transfer-Encoding: xchunked`, a bad
  chunk size all pass or end in a 500), so `StrictWSGIHandler` reads the head itself and
  serves chunked bodies with `StrictChunkedInput`.
- `StrictGeventWorker` (EVGATE_WORKER_CLASS=gevent): gunicorn's own parser is strict already;
  evgate adds its few extra rules (only `chunked`, Content-Length of at most 18 digits), turns
  body parse errors into a 400 for the application, and answers JSON instead of HTML.

Both answer a bad request with a short JSON body and `Connection: close`, then close: the
bytes behind it are never read as another request.

Timeouts (docs/deployment.md): a new connection must deliver a complete request head within
EVGATE_HEADER_TIMEOUT seconds. Between keep-alive requests the connection may stay idle for
gunicorn's `keepalive` (75 s, longer than the usual load-balancer idle timeout); once the
first byte of the next request arrives, its head must be complete within
EVGATE_HEADER_TIMEOUT too. The clock stops when the head is read: request bodies, responses
and streams (SSE, WebSocket) are not cut by it.
"""
from __future__ import annotations

import errno
import logging
import socket
import time
from functools import partial
from typing import Any

import gevent
from gevent import socket as gsocket
from gevent.pywsgi import MAX_REQUEST_LINE, OldMessage
from gevent.server import StreamServer
from gunicorn import http, util
from gunicorn.http import errors as gerrors
from gunicorn.http2 import negotiation
from gunicorn.workers.ggevent import (GeventPyWSGIWorker, GeventWorker, PyWSGIHandler,
                                      PyWSGIServer)

from . import http_framing as framing
from .accept_balance import BalancedAccept, balance_for
from .config import Config

logger = logging.getLogger(__name__)


def _headers_message(fields: list[tuple[str, str]]) -> OldMessage:
    """The message pywsgi reads the headers from, built from fields evgate already parsed and
    checked (http_framing): re-serialising them for the email parser cost ~50 us a request,
    5 % of an ingestion request's CPU (docs/benchmarks.md)."""
    message = OldMessage()
    message._headers = fields   # email.message.Message's own storage: (name, value) pairs
    return message


def _header_timeout() -> float:
    return float(Config.from_env().header_timeout)


def _balance(worker: Any):  # noqa: ANN202
    """The worker's share of the node's accept balance (evgate/accept_balance.py)."""
    return balance_for(worker, Config.from_env().accept_balance_ms)


def _send_quietly(sock: Any, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass   # the client is gone already


# -- gevent_pywsgi ---------------------------------------------------------------------------
class StrictWSGIHandler(PyWSGIHandler):
    """gunicorn's pywsgi handler with a strict request head, strict chunked bodies and the
    head timeout. `header_timeout` and `keepalive` are set by the worker."""

    header_timeout = 10.0
    keepalive = 75.0
    _head_timer: gevent.Timeout | None = None
    _idle_timer: gevent.Timeout | None = None
    _served = 0
    _rejected = False
    _chunked = False

    def handle(self) -> None:
        self._served = 0
        # one timer each per connection, started and cancelled per request (a new
        # gevent.Timeout per request and phase was ~2 us each: bench/ingest.py)
        self._idle_timer = gevent.Timeout(self.keepalive, False)
        self._head_timer = gevent.Timeout(self.header_timeout)
        try:
            super().handle()
        finally:
            self._idle_timer.close()
            self._head_timer.close()

    # the head ------------------------------------------------------------------------------
    def read_requestline(self) -> str:
        if self._served:
            # keep-alive: idle up to `keepalive` for the first byte of the next request
            if self.keepalive <= 0:
                return ""
            first = None
            idle = self._idle_timer
            idle.start()
            try:
                first = self.rfile.peek(1)
            except gevent.Timeout as exc:
                if exc is not idle:
                    raise
            finally:
                idle.cancel()
            if not first:
                return ""   # idle too long, or the client closed: end the connection
        self._head_timer.start()
        line = self.rfile.readline(MAX_REQUEST_LINE)
        if line == b"\r\n":
            line = self.rfile.readline(MAX_REQUEST_LINE)   # RFC 9112 2.2: one empty line
        if line and not line.endswith(b"\r\n"):
            if len(line) >= MAX_REQUEST_LINE:
                raise framing.FramingError(f"request line over {MAX_REQUEST_LINE} bytes", 414)
            if line.endswith(b"\n"):
                raise framing.FramingError("bare LF ends the request line")
            return ""   # the connection ended inside the request line
        return line.decode("latin-1")

    def read_request(self, raw_requestline: str) -> bool:
        raw = raw_requestline.encode("latin-1")
        self.command, self.path, self.request_version = framing.parse_request_line(raw[:-2])
        self.requestline = raw[:-2].decode("latin-1")
        fields = framing.read_field_lines(self.rfile.readline)
        decoded = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields]
        self.content_length, self._chunked = framing.body_framing(decoded, self.request_version)
        self.headers = _headers_message(decoded)
        connection = self.headers.get("Connection", "").lower()
        if self.request_version == "HTTP/1.1":
            self.close_connection = connection == "close"
        else:
            self.close_connection = connection != "keep-alive"
        self._stop_head_timer()   # the head is complete: the rest is not timed here
        return True

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()

    def handle_one_request(self):  # noqa: ANN201 - pywsgi's protocol (None, True or a tuple)
        try:
            result = super().handle_one_request()
        except framing.FramingError as exc:          # raised by read_requestline
            result = self._handle_client_error(exc)
        except gevent.Timeout as exc:
            if exc is not self._head_timer:
                raise
            logger.debug("no complete request head from %s within %ss: closed",
                         self.client_address, self.header_timeout)
            return None
        finally:
            self._stop_head_timer()
        if isinstance(result, tuple):
            status, response = result
            if not self._rejected:   # pywsgi's own answers (414) in evgate's format
                response = framing.error_response(int(status), "request line too long")
            _send_quietly(self.socket, response)
            self.close_connection = True
            return None
        self._served += 1
        return result

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        self._rejected = True
        if isinstance(ex, framing.FramingError):
            status, message = ex.status, ex.message
        else:
            status, message = 400, "malformed request"
        logger.warning("rejected a request from %s: %s %s", self.client_address[0]
                       if isinstance(self.client_address, tuple) else self.client_address,
                       status, message)
        return str(status), framing.error_response(status, message)

    # the body ------------------------------------------------------------------------------
    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env["evgate.handover"] = True   # a stream may take the connection over: process_result
        if self._chunked and not self._connection_upgrade_requested():
            expect = env.get("HTTP_EXPECT", "").lower() == "100-continue"
            self.wsgi_input = framing.StrictChunkedInput(
                self.rfile, on_error=self._end_connection,
                continue_socket=self.socket if expect else None)
            env["wsgi.input"] = self.wsgi_input
        return env

    def _end_connection(self) -> None:
        self.close_connection = True

    def process_result(self) -> None:
        """A fast-path stream takes the connection over once its first chunk is out
        (evgate/entrypoints/detached.py) by raising an exception marked `takes_connection`:
        the response ends here without its last chunk and the connection without reading
        from the socket (the stream took its fd over and detached the server's socket, whose
        close is then a no-op), which frees this handler, its buffers and the greenlet."""
        try:
            super().process_result()
        except BaseException as exc:
            if not getattr(exc, "takes_connection", False):
                raise
            self.close_connection = True
            self.socket = None

    def log_request(self) -> None:
        """gunicorn's access log is off (evgate writes its own, gunicorn_settings.accesslog
        is None): skip building its arguments (two datetimes, a response object, the request
        headers) for every request, as gunicorn's own access() would return at once."""
        log = self.server.log
        enabled = getattr(log, "access_log_enabled", None)   # gunicorn >= 24
        if enabled is None:
            cfg = log.cfg
            enabled = bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict
                           or getattr(cfg, "logconfig_json", None) or cfg.syslog)
        if enabled:
            super().log_request()

    def start_response(self, status, headers, exc_info=None):  # noqa: ANN001, ANN201
        """Tell the client when this response is the connection's last (a malformed body)."""
        if (self.close_connection and not str(status).startswith("101")
                and not any(name.lower() == "connection" for name, _ in headers)):
            headers = list(headers) + [("Connection", "close")]
        return super().start_response(status, headers, exc_info)


class StrictPyWSGIWorker(GeventPyWSGIWorker):
    """`gevent_pywsgi` with StrictWSGIHandler (EVGATE_WORKER_CLASS=gevent_pywsgi)."""

    def run(self) -> None:
        self.wsgi_handler = type("StrictWSGIHandler", (StrictWSGIHandler,), {
            "header_timeout": _header_timeout(), "keepalive": float(self.cfg.keepalive)})
        self.server_class = type("BalancedPyWSGIServer", (BalancedAccept, PyWSGIServer),
                                 {"balance": _balance(self)})
        super().run()


# -- gevent (gunicorn's parser) --------------------------------------------------------------
_STATUS = (   # gunicorn's parse errors -> status (the rest: 400)
    (gerrors.UnsupportedTransferCoding, 501), (gerrors.LimitRequestLine, 414),
    (gerrors.LimitRequestHeaders, 431), (gerrors.ExpectationFailed, 417),
    (gerrors.ForbiddenProxyRequest, 403),
)


class StrictGeventWorker(GeventWorker):
    """`gevent` with evgate's framing rules, JSON errors and the head timeout
    (EVGATE_WORKER_CLASS=gevent)."""

    def init_process(self) -> None:
        self.header_timeout = _header_timeout()
        super().init_process()

    def run(self) -> None:
        """gunicorn's run with a StreamServer that balances accepts: gunicorn makes its
        StreamServer by name, so this passes one as `server_class` (whose arguments are a
        WSGI server's). gunicorn's one accept per wake-up with several workers stays when
        the balance is off (BalancedAccept.set_max_accept says why)."""
        worker = self
        balance = _balance(self)

        class BalancedStreamServer(BalancedAccept, StreamServer):
            def __init__(self, listener: Any, application: Any = None, spawn: Any = None,
                         log: Any = None, handler_class: Any = None, environ: Any = None,
                         **ssl_args: Any):
                super().__init__(listener, handle=partial(worker.handle, listener),
                                 spawn=spawn, **ssl_args)
                if worker.cfg.workers > 1 and balance is None:
                    self.max_accept = 1

        BalancedStreamServer.balance = balance
        self.server_class = BalancedStreamServer
        super().run()

    def timeout_ctx(self) -> gevent.Timeout:
        # gunicorn's own loop (TLS, HTTP/2 negotiation): the head timeout bounds idle too
        return gevent.Timeout(self.header_timeout, False)

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, addr):
            return super().handle(listener, client, addr)
        client.setblocking(1)
        req = None
        try:
            parser = http.get_parser(self.cfg, client, addr)
            listener_name = listener.getsockname()
            proxy_protocol_info: dict = {}
            while True:
                req = None
                if parser.req_count and not (self._skip_unread_body(parser, addr)
                                             and self._next_request_begins(client, parser)):
                    break
                timer = gevent.Timeout(self.header_timeout)
                timer.start()
                try:
                    req = next(parser)
                except gevent.Timeout as exc:
                    if exc is not timer:
                        raise
                    self.log.debug("no complete request head from %s within %ss: closed",
                                   addr, self.header_timeout)
                    break
                finally:
                    timer.close()
                if not req:
                    break
                if self._try_h2c_upgrade(listener, req, parser, client, addr):
                    return None
                if req.proxy_protocol_info:
                    proxy_protocol_info = req.proxy_protocol_info
                else:
                    req.proxy_protocol_info = proxy_protocol_info
                self.handle_request(listener_name, req, client, addr)
                if not self.cfg.keepalive:
                    break
        except gerrors.NoMoreData as exc:
            self.log.debug("Ignored premature client disconnection. %s", exc)
        except StopIteration as exc:
            self.log.debug("Closing connection. %s", exc)
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
        except Exception as exc:  # noqa: BLE001 - answered by handle_error, never a traceback
            self.handle_error(req, client, addr, exc)
        finally:
            util.close(client)
        return None

    def _skip_unread_body(self, parser: Any, addr: Any) -> bool:
        """What the application left of the body must arrive within the head timeout and be
        well-formed; else the connection ends without another answer: a second response to
        one request would desynchronise a proxy's response queue."""
        try:
            return parser.finish_body(deadline=time.monotonic() + self.header_timeout,
                                      max_bytes=1 << 62)   # bounded by time, not size
        except (framing.FramingError, gerrors.ParseException) as exc:
            logger.warning("closed the connection of %s: %s", addr[0] if isinstance(
                addr, tuple) else addr, getattr(exc, "message", exc))
            return False

    def _next_request_begins(self, client: Any, parser: Any) -> bool:
        """Keep-alive: wait up to `keepalive` for the next request's first byte."""
        with parser.unreader.buf.getbuffer() as buffered:
            if buffered.nbytes:
                return True   # pipelined: already here
        try:
            gsocket.wait_read(client.fileno(), timeout=self.cfg.keepalive)
        except socket.timeout:
            return False
        return True

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        version = "HTTP/%d.%d" % req.version
        framing.body_framing(req.headers, version)   # evgate's rules on top of gunicorn's
        req.body = framing.GuardedBody(req.body, req.force_close)
        return super().handle_request(listener_name, req, sock, addr)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """JSON instead of gunicorn's HTML page; a client's error is a 4xx/501, logged as a
        warning without a traceback."""
        ip = addr[0] if isinstance(addr, tuple) else addr
        if isinstance(exc, framing.FramingError):
            status, message = exc.status, exc.message
        elif isinstance(exc, gerrors.ParseException) and not isinstance(
                exc, (gerrors.InvalidResponseHeader, gerrors.InvalidResponseHeaderName,
                      gerrors.ConfigurationProblem)):
            status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
            message = str(exc)[:200]
            if isinstance(exc, gerrors.InvalidRequestLine):   # the target may carry a key
                message = "malformed request line: METHOD SP target SP HTTP/1.x expected"
        else:
            self.log.exception("Error handling request")
            status, message = 500, "Internal Server Error"
        if status != 500:
            logger.warning("rejected a request from %s: %s %s", ip, status, message)
        _send_quietly(client, framing.error_response(status, message))

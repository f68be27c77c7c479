"""Logging setup: the application log and the access log, plain or JSON lines on stderr.

Call `configure(config)` once per process (CLI, gunicorn master, each worker).

- Context: every record made while a gateway request is handled carries `api_id`,
  `entrypoint` and `transaction_id` (`RequestContextFilter` reads them from the greenlet's
  `RequestScope` on the fast path, from `flask.g` for requests Flask serves; both live in
  contextvars: greenlet-local under gevent, so concurrent requests never mix).
- Access log: logger `evgate.access`, one line per request when its response ends (a stream
  when it closes), with method, path, status, duration, bytes, API, entrypoint, transaction
  id and client address as record attributes (`ACCESS_FIELDS`; JSON keys in JSON format).
  Written by evgate/observability/access.py; off with EVGATE_ACCESS_LOG=false. In a gevent
  worker, lines below WARNING are written in batches every 0.2 s (`BatchingStreamHandler`);
  access lines are queued there without a LogRecord when that handler is the only one they
  would reach (`access_handler`).
- Secrets: both formatters pass what they write (message, exception text, each JSON field)
  through `mask_secrets`, which masks Authorization values, Basic/Bearer credentials,
  `password=`/`secret=`/`api-key=`/`token=`-style pairs (also as JSON or query parameters),
  SASL JAAS passwords and the password of URLs such as `postgresql://user:pass@host`.
  Connector reprs and client configs are masked where they are built, too
  (evgate/kafka/client_config.py `mask`); this is the last line of defence. gunicorn's own
  loggers, which evgate does not format, get the same masking from `MaskingFilter`.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from datetime import datetime, timezone
from typing import Any

from .config import Config
from .core.process import current_pid

CONTEXT_FIELDS = ("api_id", "entrypoint", "transaction_id")
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "bytes", "api_id", "entrypoint",
                 "transaction_id", "client")
MASK = "****"

# -- secrets -------------------------------------------------------------------------------
_SECRET_KEYS = (r"[\w.-]*(?:password|passwd|pwd|secret|api[-_]?key|apikey|token|credentials?"
                r"|signature|sasl\.jaas\.config|jaas)")
_PATTERNS = (
    # Authorization: Basic xxx / "authorization": "Bearer xxx" / proxy-authorization=xxx
    (re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
                r"(?:(basic|bearer|digest|negotiate|apikey)\s+)?[^\s\"',;&]+"),
     lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}"),
    # a credential on its own: "Basic dXNlcjpwYXNz", "Bearer eyJ..."
    (re.compile(r"(?i)\b(basic|bearer)\s+(?!\*\*\*\*)[A-Za-z0-9._~+/=-]{4,}"),
     lambda m: f"{m.group(1)} {MASK}"),
    # EVGATE_SECRETS_KEY=k1,k2 (a comma-separated list of keys, all secret)
    (re.compile(r"(?i)(\b[\w.-]*secrets[-_]key[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*\*)[^\s\"']+"),
     lambda m: f"{m.group(1)}{MASK}"),
    # key=value, key: value, "key": "value", ?api-key=value&... for secret-looking keys
    (re.compile(r"(?i)(\b" + _SECRET_KEYS + r"[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*\*)"
                r"([^\s\"'&,;}\]]+)"),
     lambda m: f"{m.group(1)}{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(\b[a-zA-Z][\w+.-]*://[^/\s:@]+:)[^@\s/]+@"),
     lambda m: f"{m.group(1)}{MASK}@"),
)
_TRIGGERS = ("auth", "basic", "bearer", "pass", "pwd", "secret", "key", "token", "credential",
             "signature", "jaas", "://")


def mask_secrets(text: str) -> str:
    """`text` with every credential-looking value replaced by ****."""
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text  # the common case costs one lower() and a few substring tests
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


# -- context --------------------------------------------------------------------------------
class RequestScope:
    """The log context of the gateway request a greenlet is handling, without Flask's app
    context: the raw-WSGI fast path (evgate/gateway/wsgi_dispatch.py) enters one per request
    instead of pushing an app context for `flask.g` (~3 % of an ingestion request's CPU,
    docs/benchmarks.md issue 11 tenth pass). A contextvar: greenlet-local under gevent."""

    __slots__ = CONTEXT_FIELDS

    def __init__(self) -> None:
        self.api_id: str | None = None
        self.entrypoint: str | None = None
        self.transaction_id: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        """As `flask.g.get`: the dispatcher writes either."""
        return getattr(self, name, default)

    def enter(self) -> contextvars.Token:
        return _REQUEST_SCOPE.set(self)

    @staticmethod
    def leave(token: contextvars.Token) -> None:
        _REQUEST_SCOPE.reset(token)


_REQUEST_SCOPE: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "evgate_request_scope", default=None)


class RequestContextFilter(logging.Filter):
    """Adds api_id / entrypoint / transaction_id of the current gateway request, if any: from
    the greenlet's `RequestScope` (the fast path), else from `flask.g` (requests Flask
    serves)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "transaction_id", None) is None:
            try:
                scope: Any = _REQUEST_SCOPE.get()
                if scope is None:
                    from flask import g, has_app_context
                    if not has_app_context():
                        return True
                    scope = g
                for name in CONTEXT_FIELDS:
                    value = scope.get(name)
                    if value is not None and getattr(record, name, None) is None:
                        setattr(record, name, value)
            except Exception:  # noqa: BLE001 - logging must never fail a request
                pass
        return True


# -- formatters -----------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    def format_access(self, created: float, msecs: float, process: int | None,
                      fields: dict[str, Any]) -> str:
        """The JSON line of an access record made at `created` with `fields` (the same text
        whether the record went through `format` or was queued without a LogRecord:
        `BatchingStreamHandler.queue_access`)."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(created, timezone.utc).isoformat(),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": mask_secrets(format_access(fields)),
            "process": process,
        }
        for attribute in ACCESS_FIELDS:
            value = fields.get(attribute)
            if value is not None:
                entry[attribute] = mask_secrets(value) if isinstance(value, str) else value
        return json.dumps(entry)

    def format(self, record: logging.LogRecord) -> str:
        if _is_plain_access_record(record) and record.levelno == logging.INFO:
            return self.format_access(record.created, record.msecs, record.process,
                                      record.args[0].fields)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "process": record.process,
        }
        fields = ACCESS_FIELDS if record.name == ACCESS_LOGGER else CONTEXT_FIELDS
        for attribute in fields:
            value = getattr(record, attribute, None)
            if value is not None:
                entry[attribute] = mask_secrets(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        # masked field by field, before encoding: masking the JSON text could eat an escape
        return json.dumps(entry)


PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class PlainFormatter(logging.Formatter):
    """PLAIN_FORMAT, then ` [api=... entrypoint=... tx=...]` for records made in a request."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)
        self._stamp: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """What logging.Formatter writes, its seconds part formatted once a second (one
        strftime per line was ~3 us of every access line: bench/ingest.py)."""
        if datefmt is not None or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        return self._asctime(record.created, record.msecs)

    def _asctime(self, created: float, msecs: float) -> str:
        second = int(created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime(self.default_time_format,
                                                         self.converter(created)))
        return self.default_msec_format % (stamp[1], msecs)

    def format_access(self, created: float, msecs: float, process: int | None,
                      fields: dict[str, Any]) -> str:
        """PLAIN_FORMAT's text of an access record made at `created` with `fields`, without
        the generic formatter's style lookup and checks (~2x cheaper; a test compares the
        two). Used for access records (`format`) and for access lines queued without one
        (`BatchingStreamHandler.queue_access`)."""
        return mask_secrets(f"{self._asctime(created, msecs)} INFO [{process}] "
                            f"{ACCESS_LOGGER}: {format_access(fields)}")

    def format(self, record: logging.LogRecord) -> str:
        if _is_plain_access_record(record) and self.default_msec_format \
                and record.levelno == logging.INFO:
            return self.format_access(record.created, record.msecs, record.process,
                                      record.args[0].fields)
        text = super().format(record)
        if record.name != ACCESS_LOGGER:
            context = " ".join(f"{label}={value}" for label, value in (
                ("api", getattr(record, "api_id", None)),
                ("entrypoint", getattr(record, "entrypoint", None)),
                ("tx", getattr(record, "transaction_id", None))) if value is not None)
            if context:
                first, sep, rest = text.partition("\n")
                text = f"{first} [{context}]{sep}{rest}"
        return mask_secrets(text)


ACCESS_LOGGER = "evgate.access"


def format_access(fields: dict[str, Any]) -> str:
    """The plain access line: `client "METHOD path" status duration bytes api= entrypoint= tx=`."""
    size = fields.get("bytes")
    return (f'{fields.get("client") or "-"} "{fields.get("method")} {fields.get("path")}" '
            f'{fields.get("status")} {fields.get("duration_ms"):.1f}ms '
            f'{"-" if size is None else size}B api={fields.get("api_id") or "-"} '
            f'entrypoint={fields.get("entrypoint") or "-"} tx={fields.get("transaction_id") or "-"}')


def _is_plain_access_record(record: logging.LogRecord) -> bool:
    """An access record as evgate/observability/access.py makes it: its fields are the whole
    of what a formatter writes (no traceback, no stack)."""
    args = record.args
    return (type(args) is tuple and len(args) == 1 and type(args[0]) is AccessLine
            and record.msg == "%s" and record.name == ACCESS_LOGGER
            and not record.exc_info and not record.exc_text and not record.stack_info)


class AccessLine:
    """The access log message, formatted by `format_access` when a handler asks for it."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]):
        self.fields = fields

    def __str__(self) -> str:
        return format_access(self.fields)


class MaskingFilter(logging.Filter):
    """For loggers whose handlers evgate does not format (gunicorn's `gunicorn.error`, which
    logs e.g. "Error handling request /path?api-key=..." and, at debug, its whole
    configuration with `raw_env`): masks the message and the exception text of each record
    before any handler sees it. A filter on the logger survives gunicorn's handler setup."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            masked = mask_secrets(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = mask_secrets(
                    logging.Formatter().formatException(record.exc_info))
        except Exception:  # noqa: BLE001 - logging must never fail
            pass
        return True


GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


def mask_gunicorn_logs() -> None:
    """Idempotent: install MaskingFilter on gunicorn's own loggers (evgate/gunicorn_settings.py
    calls it when gunicorn loads its configuration, before gunicorn logs anything)."""
    for name in GUNICORN_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, MaskingFilter) for f in target.filters):
            target.addFilter(MaskingFilter())


def release_gevent_lock() -> None:
    """Give `logging` back a native module lock, for the end of a gevent worker's life.

    gevent's monkey-patching (gunicorn's gevent workers) replaces `logging._lock` with an RLock
    that asks gevent for the current greenlet. Handlers that are still alive when the
    interpreter tears down (gunicorn's and the master's, inherited across the fork) are freed
    after gevent's modules were cleared, and their weakref callback (`_removeHandlerRef`) takes
    that lock: "Exception ignored in _removeHandlerRef ... TypeError: 'NoneType' object is not
    callable" on every worker exit. Called from gunicorn's `worker_exit` hook, when no other
    greenlet logs any more: a native RLock serves the rest of the process (one thread) and
    does not depend on gevent. The lock is swapped while not held (we hold it to swap).
    """
    import _thread
    current = logging._lock  # type: ignore[attr-defined]
    if current is None or isinstance(current, type(_thread.RLock())):
        return
    with current:
        logging._lock = _thread.RLock()  # type: ignore[attr-defined]


class BatchingStreamHandler(logging.StreamHandler):
    """A StreamHandler that, in a gevent worker, writes records below WARNING (the access
    log, above all) in batches: they are formatted and written together by a greenlet every
    FLUSH_INTERVAL_S, or as soon as CAPACITY are waiting. One write per batch rather than a
    formatted line and a blocking write (with its lock) inside each request.

    A WARNING or worse, or a record with an exception, flushes what waits and is written at
    once, so errors are never late and the order of lines stays. Outside a gevent-patched
    process (the CLI, the gunicorn master, tests) every record is written at once. Lines are
    flushed at worker exit (gunicorn's `worker_exit`, `logging.shutdown`); a killed worker
    (SIGKILL) loses at most the last FLUSH_INTERVAL_S of INFO lines.
    """

    FLUSH_INTERVAL_S = 0.2
    CAPACITY = 256

    def __init__(self, stream: Any = None):
        super().__init__(stream)
        self._pending: list[logging.LogRecord] = []
        self._flusher_pid: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.exc_info or not self.batching():
            self._write_pending()
            super().emit(record)
            return
        self._pending.append(record)
        if len(self._pending) >= self.CAPACITY:
            self._write_pending()

    def queue_access(self, created: float, fields: dict[str, Any]) -> None:
        """An access line made at `created` (`time.time()`), queued without a LogRecord and
        formatted at the flush by the formatter's `format_access`: the same text as the
        record `evgate.access` would get, without the record, `Logger.handle`, the filter
        and the handler lock in the request (docs/benchmarks.md, issue 11 tenth pass). Only
        what `access_handler()` returned takes these."""
        self._pending.append((created, fields))
        if len(self._pending) >= self.CAPACITY:
            self.acquire()
            try:
                self._write_pending()
            finally:
                self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
            super().flush()
        finally:
            self.release()

    def _write_pending(self) -> None:
        """Format and write what waits, in one write (the caller holds the handler lock)."""
        pending, self._pending = self._pending, []
        if not pending or self.stream is None:
            return
        lines = []
        process = current_pid() if logging.logProcesses else None
        format_access = getattr(self.formatter, "format_access", None)
        for record in pending:
            try:
                if type(record) is not tuple:
                    lines.append(self.format(record))
                elif format_access is not None:   # queue_access: (created, fields)
                    created, fields = record
                    lines.append(format_access(
                        created, int((created - int(created)) * 1000) + 0.0, process, fields))
                else:   # the formatter was replaced since the line was queued
                    lines.append(self.format(_access_log_record(*record)))
            except Exception:  # noqa: BLE001 - as logging does: report, go on
                self.handleError(record if type(record) is not tuple else _access_log_record(
                    *record))
        try:
            self.stream.write(self.terminator.join(lines) + self.terminator)
            self.stream.flush()
        except Exception:  # noqa: BLE001
            self.handleError(pending[-1])

    def batching(self) -> bool:
        """True when INFO lines wait for the flush: in a gevent-patched process, where a
        greenlet flushes (started once per process: workers are forked from the master,
        which does not batch)."""
        pid = current_pid()   # asked per access line: no system call
        if self._flusher_pid == pid:
            return True
        from gevent import monkey
        if not monkey.is_module_patched("socket"):
            return False
        import gevent
        self._flusher_pid = pid
        gevent.spawn(self._flush_loop)
        return True

    def _flush_loop(self) -> None:
        import gevent
        while True:
            gevent.sleep(self.FLUSH_INTERVAL_S)
            if self._pending:
                self.flush()


def _access_log_record(created: float, fields: dict[str, Any]) -> logging.LogRecord:
    """A queued access line as a LogRecord (for a formatter without `format_access`, and to
    report a line that could not be written)."""
    record = logging.getLogger(ACCESS_LOGGER).makeRecord(
        ACCESS_LOGGER, logging.INFO, __file__, 0, "%s", (AccessLine(fields),), None,
        extra=fields)
    record.created = created
    return record


def access_handler() -> BatchingStreamHandler | None:
    """The handler to `queue_access` access lines to, when an `evgate.access` record would
    reach that one handler and nothing else: evgate's own batching handler in a gevent
    worker with evgate's formatter, no filter on the way but `RequestContextFilter` (a no-op
    for a line that names its transaction), no other handler on the loggers from
    `evgate.access` up. None otherwise (an operator's or a test's handler, a filter, the
    CLI): the line then goes as a record through `logging` (evgate/observability/access.py).
    Asked per request (~0.6 us): logging's configuration may change at any time."""
    found = None
    current: logging.Logger | None = _ACCESS_LOGGER_OBJECT
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not BatchingStreamHandler:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if (found is None or found.level > logging.INFO
            or type(found.formatter) not in _ACCESS_FORMATTERS
            or any(type(f) is not RequestContextFilter for f in found.filters)
            or not found.batching()):
        return None
    return found


_ACCESS_FORMATTERS = (PlainFormatter, JsonFormatter)
#: loggers live as long as the process: `logging.getLogger` takes logging's module lock
_ACCESS_LOGGER_OBJECT = logging.getLogger(ACCESS_LOGGER)


def flush_handlers() -> None:
    """Write what the root's handlers hold (gunicorn's `worker_exit`)."""
    for handler in list(logging.getLogger().handlers):
        try:
            handler.flush()
        except Exception:  # noqa: BLE001 - the worker is ending anyway
            pass


def configure(config: Config) -> None:
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if config.log_format == "json" else PlainFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(config.log_level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    access_enabled = getattr(config, "access_log", True)
    access = logging.getLogger(ACCESS_LOGGER)
    # The access log is INFO lines: kept at level info even when the application log is
    # quieter, and silenced only by EVGATE_ACCESS_LOG=false.
    access.setLevel(logging.INFO if access_enabled else logging.CRITICAL + 1)

"""Access lines queued without a LogRecord, the fast path's RequestScope and the declared body
length read from the environ (issue 11, tenth pass: evgate/logs.py, evgate/observability/
access.py, evgate/gateway/wsgi_dispatch.py, evgate/entrypoints/http_post.py)."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket

import pytest

from evgate.entrypoints.http_post import _declared_length
from evgate.logs import (ACCESS_LOGGER, AccessLine, BatchingStreamHandler, JsonFormatter,
                         PlainFormatter, RequestContextFilter, RequestScope, access_handler)
from evgate.observability.access import ConnectionTracker, RequestObserver

FIELDS = [
    {"method": "POST", "path": "/data/ingestion", "status": 202, "duration_ms": 12.345,
     "bytes": 0, "api_id": "a1", "entrypoint": "http-post", "transaction_id": "t1",
     "client": "127.0.0.1"},
    {"method": "GET", "path": "/in?api-key=s3cr3t&x=1", "status": 401, "duration_ms": 0.04,
     "bytes": None, "api_id": None, "entrypoint": None, "transaction_id": "t2", "client": None},
    {"method": "GET", "path": "/a/Authorization: Bearer abcdefgh", "status": 200,
     "duration_ms": 1e6, "bytes": 7, "api_id": "x", "entrypoint": "sse",
     "transaction_id": "t", "client": "::1"},
]


def _worker_handler(formatter: logging.Formatter) -> tuple[BatchingStreamHandler, io.StringIO]:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestContextFilter())
    handler._flusher_pid = os.getpid()   # as in a worker whose flush greenlet runs
    return handler, stream


def _as_record(fields: dict, created: float) -> logging.LogRecord:
    record = logging.getLogger(ACCESS_LOGGER).makeRecord(
        ACCESS_LOGGER, logging.INFO, __file__, 0, "%s", (AccessLine(fields),), None,
        extra=fields)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    return record


@pytest.mark.parametrize("formatter_class", [PlainFormatter, JsonFormatter])
@pytest.mark.parametrize("fields", FIELDS)
def test_a_queued_access_line_is_the_text_its_record_gets(formatter_class, fields):
    for created in (1764600000.0, 1764600000.999, 1764600001.5, 1764600001.0005):
        queued, queued_out = _worker_handler(formatter_class())
        queued.queue_access(created, dict(fields))
        queued.flush()
        recorded, recorded_out = _worker_handler(formatter_class())
        recorded.handle(_as_record(dict(fields), created))
        recorded.flush()
        assert queued_out.getvalue() == recorded_out.getvalue() != ""
        assert "s3cr3t" not in queued_out.getvalue()
        assert "abcdefgh" not in queued_out.getvalue()


def test_json_queued_lines_are_json_with_every_field():
    handler, stream = _worker_handler(JsonFormatter())
    handler.queue_access(1764600000.25, dict(FIELDS[0]))
    handler.flush()
    entry = json.loads(stream.getvalue())
    assert entry["logger"] == ACCESS_LOGGER and entry["level"] == "info"
    assert entry["process"] == os.getpid()
    assert (entry["status"], entry["transaction_id"], entry["path"]) == \
        (202, "t1", "/data/ingestion")


def test_queued_lines_keep_their_order_with_records_and_a_full_queue_is_written():
    handler, stream = _worker_handler(PlainFormatter())
    handler.handle(logging.LogRecord("evgate.x", logging.INFO, __file__, 1, "first", None,
                                     None))
    handler.queue_access(1764600000.0, dict(FIELDS[0]))
    handler.handle(logging.LogRecord("evgate.x", logging.WARNING, __file__, 1, "warned",
                                     None, None))
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(": ", 1)[-1][:5] for line in lines] == ["first", "127.0", "warne"]
    for _ in range(handler.CAPACITY):
        handler.queue_access(1764600000.0, dict(FIELDS[0]))
    assert stream.getvalue().count("\n") == 3 + handler.CAPACITY


@contextlib.contextmanager
def _alone(handler: logging.Handler):
    """`handler` as the root's only handler and no filter (as `configure` leaves a worker),
    for the body of a test: pytest's own logging handlers sit on the root while it runs."""
    root = logging.getLogger()
    saved = (list(root.handlers), list(root.filters))
    root.handlers[:] = [handler]
    root.filters[:] = []
    try:
        yield
    finally:
        root.handlers[:], root.filters[:] = saved


@pytest.fixture
def only_handler():
    return _worker_handler(PlainFormatter())


def test_access_handler_is_the_one_handler_a_record_would_reach(only_handler):
    handler, _ = only_handler
    with _alone(handler):
        assert access_handler() is handler


@pytest.mark.parametrize("change", ["second handler", "access handler", "logger filter",
                                    "handler filter", "foreign formatter", "level",
                                    "not batching", "not propagating"])
def test_access_handler_is_none_when_a_record_would_go_elsewhere_too(only_handler, change):
    handler, _ = only_handler
    access = logging.getLogger(ACCESS_LOGGER)
    extra = logging.StreamHandler(io.StringIO())
    with _alone(handler):
        assert access_handler() is handler
        if change == "second handler":   # e.g. pytest's caplog
            logging.getLogger().addHandler(extra)
        elif change == "access handler":
            access.addHandler(extra)
        elif change == "logger filter":
            access.addFilter(logging.Filter("nothing"))
        elif change == "handler filter":
            handler.addFilter(logging.Filter("nothing"))
        elif change == "foreign formatter":
            handler.setFormatter(logging.Formatter("%(message)s"))
        elif change == "level":
            handler.setLevel(logging.WARNING)
        elif change == "not batching":   # not a gevent worker: records are written at once
            handler._flusher_pid = -1
        elif change == "not propagating":
            access.propagate = False
        try:
            assert access_handler() is None
        finally:
            access.removeHandler(extra)
            access.filters.clear()
            access.propagate = True


def test_the_observer_queues_the_line_to_the_only_handler(only_handler, monkeypatch):
    handler, stream = only_handler
    made = []
    monkeypatch.setattr("evgate.observability.access._access_record",
                        lambda fields: made.append(fields))   # the record way: not taken
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    try:
        with _alone(handler):
            body = RequestObserver(_app_202, ConnectionTracker())(
                {"REQUEST_METHOD": "POST", "PATH_INFO": "/q", "QUERY_STRING": "token=abc123",
                 "REMOTE_ADDR": "10.0.0.9"}, lambda *a: None)
            list(body)
            body.close()
        assert handler._pending and type(handler._pending[0]) is tuple
        handler.flush()
    finally:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)
    assert made == []
    line = stream.getvalue()
    assert '10.0.0.9 "POST /q?token=****" 202 ' in line and "tx=tx-q" in line
    assert "abc123" not in line


def _app_202(environ, start_response):
    start_response("202 Accepted", [("Content-Length", "0")])
    environ.update({"evgate.api_id": "api-q", "evgate.entrypoint": "http-post",
                    "evgate.transaction_id": "tx-q"})
    return [b""]


def test_with_another_handler_the_line_is_a_record_again(only_handler, caplog):
    handler, stream = only_handler
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER), _alone(handler):
        logging.getLogger().addHandler(caplog.handler)
        body = RequestObserver(_app_202, ConnectionTracker())(
            {"REQUEST_METHOD": "POST", "PATH_INFO": "/q", "QUERY_STRING": "",
             "REMOTE_ADDR": "10.0.0.9"}, lambda *a: None)
        body.close()
        handler.flush()
    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert '"POST /q" 202' in stream.getvalue()   # and evgate's handler wrote it too
    assert record.transaction_id == "tx-q" and record.status == 202


# -- RequestScope -------------------------------------------------------------------------------
def test_the_filter_reads_the_greenlet_s_request_scope():
    scope = RequestScope()
    scope.api_id, scope.entrypoint, scope.transaction_id = "a9", "http-post", "t9"
    token = scope.enter()
    try:
        record = logging.LogRecord("evgate.x", logging.WARNING, __file__, 1, "m", None, None)
        RequestContextFilter().filter(record)
    finally:
        RequestScope.leave(token)
    assert (record.api_id, record.entrypoint, record.transaction_id) == \
        ("a9", "http-post", "t9")
    after = logging.LogRecord("evgate.x", logging.WARNING, __file__, 1, "m", None, None)
    RequestContextFilter().filter(after)
    assert getattr(after, "transaction_id", None) is None


def test_request_scopes_of_concurrent_greenlets_never_mix():
    import gevent
    seen = {}

    def request(tx: str) -> None:
        scope = RequestScope()
        scope.transaction_id = tx
        token = scope.enter()
        try:
            gevent.sleep(0.01)   # the other greenlet runs meanwhile
            record = logging.LogRecord("evgate.x", logging.INFO, __file__, 1, "m", None, None)
            RequestContextFilter().filter(record)
            seen[tx] = record.transaction_id
        finally:
            RequestScope.leave(token)
    gevent.joinall([gevent.spawn(request, "tx-a"), gevent.spawn(request, "tx-b")])
    assert seen == {"tx-a": "tx-a", "tx-b": "tx-b"}


# -- the declared length --------------------------------------------------------------------
@pytest.mark.parametrize("environ, expected", [
    ({"CONTENT_LENGTH": "1024"}, 1024),
    ({"CONTENT_LENGTH": " 7 "}, 7),
    ({}, 0),
    ({"CONTENT_LENGTH": ""}, 0),
    ({"CONTENT_LENGTH": "-5"}, 0),
    ({"CONTENT_LENGTH": "12x"}, 0),
    ({"CONTENT_LENGTH": "１２"}, 0),   # not ASCII digits
    ({"CONTENT_LENGTH": "99", "HTTP_TRANSFER_ENCODING": "chunked"}, 0),
])
def test_the_declared_length_is_what_werkzeug_reads(environ, expected):
    from werkzeug.wsgi import get_content_length
    assert _declared_length(environ) == expected
    assert (get_content_length(environ) or 0) == expected


# -- the connection tracker ------------------------------------------------------------------
def test_a_keep_alive_socket_is_tracked_once_and_still_closed_when_idle():
    tracker = ConnectionTracker()
    left, right = socket.socketpair()
    try:
        for _ in range(3):   # three requests on one connection
            tracker.begin(left)
            tracker.end(left)
        assert len(tracker._sockets) == 1 and tracker.active == 0
        assert tracker.close_idle() == 1
        assert left.recv(1) == b""   # the read side is shut: EOF
    finally:
        left.close()
        right.close()


# -- the process id ------------------------------------------------------------------------
def test_current_pid_is_the_forked_child_s_own():
    from evgate.core.process import current_pid
    assert current_pid() == os.getpid()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: report, never run pytest's teardown
        try:
            os.write(write, f"{current_pid()} {os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 64).decode().split()
    os.waitpid(pid, 0)
    os.close(read)
    assert reported == [str(pid), str(pid)]
    assert current_pid() == os.getpid() != pid


def test_a_line_queued_before_the_formatter_changed_is_still_written():
    handler, stream = _worker_handler(PlainFormatter())
    handler.queue_access(1764600000.5, dict(FIELDS[0]))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.flush()
    assert stream.getvalue().startswith('INFO evgate.access 127.0.0.1 "POST /data/ingestion" 202 ')

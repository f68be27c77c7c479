"""The per-request observability made cheap (issue 11): batched log lines, tallied request and
produce metrics, the node-port check per connection, gunicorn's skipped access log call."""
from __future__ import annotations

import io
import logging
import os

import pytest
from prometheus_client import CollectorRegistry, Histogram

from evgate.logs import (ACCESS_FIELDS, ACCESS_LOGGER, AccessLine, BatchingStreamHandler,
                         PlainFormatter)
from evgate.observability import access as access_module
from evgate.observability import metrics
from evgate.observability.access import ConnectionTracker, RequestObserver
from evgate.observability.node_app import local_port


def _record(message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("evgate.test", level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def _batching_handler(stream: io.StringIO) -> BatchingStreamHandler:
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler._flusher_pid = os.getpid()   # as in a worker whose flush greenlet runs
    return handler


def test_outside_a_gevent_worker_every_line_is_written_at_once():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(_record("one"))
    assert stream.getvalue() == "one\n"


def test_info_lines_wait_for_the_flush_and_are_written_in_one_go():
    stream = io.StringIO()
    handler = _batching_handler(stream)
    handler.handle(_record("a"))
    handler.handle(_record("b"))
    assert stream.getvalue() == ""
    handler.flush()
    assert stream.getvalue() == "INFO a\nINFO b\n"
    handler.flush()
    assert stream.getvalue() == "INFO a\nINFO b\n"   # nothing written twice


def test_a_warning_is_never_late_and_keeps_the_order():
    stream = io.StringIO()
    handler = _batching_handler(stream)
    handler.handle(_record("before"))
    handler.handle(_record("broker down", logging.WARNING))
    assert stream.getvalue() == "INFO before\nWARNING broker down\n"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        handler.handle(_record("with a traceback", exc_info=sys.exc_info()))
    assert "ValueError: boom" in stream.getvalue()


def test_a_full_buffer_is_written_without_waiting_for_the_timer():
    stream = io.StringIO()
    handler = _batching_handler(stream)
    for index in range(handler.CAPACITY):
        handler.handle(_record(f"line {index}"))
    assert stream.getvalue().count("\n") == handler.CAPACITY


def test_batched_access_lines_are_masked_like_the_others():
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(PlainFormatter())
    handler._flusher_pid = os.getpid()
    fields = {"method": "GET", "path": "/in?api-key=s3cr3t", "status": 200, "duration_ms": 1.0,
              "bytes": 2, "api_id": "a", "entrypoint": "http-get", "transaction_id": "t",
              "client": "10.0.0.1"}
    record = logging.getLogger(ACCESS_LOGGER).makeRecord(
        ACCESS_LOGGER, logging.INFO, __file__, 0, "%s", (AccessLine(fields),), None,
        extra=fields)
    handler.handle(record)
    handler.flush()
    assert "s3cr3t" not in stream.getvalue()
    assert '"GET /in?api-key=****" 200' in stream.getvalue()


def test_the_access_record_carries_its_fields(caplog):
    def app(environ, start_response):
        start_response("202 Accepted", [("Content-Length", "0")])
        environ["evgate.api_id"] = "api-1"
        environ["evgate.entrypoint"] = "http-post"
        environ["evgate.transaction_id"] = "tx-1"
        return [b""]

    observer = RequestObserver(app, ConnectionTracker())
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/in", "QUERY_STRING": "",
               "REMOTE_ADDR": "10.0.0.2"}
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        body = observer(environ, lambda *a: None)
        list(body)
        body.close()
    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert (record.method, record.status, record.api_id, record.transaction_id) == \
        ("POST", 202, "api-1", "tx-1")
    assert record.getMessage().startswith('10.0.0.2 "POST /in" 202 ')


def _observe_one(caplog) -> logging.LogRecord:
    def app(environ, start_response):
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    observer = RequestObserver(app, ConnectionTracker())
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        body = observer({"REQUEST_METHOD": "POST", "PATH_INFO": "/in", "QUERY_STRING": ""},
                        lambda *a: None)
        body.close()
    return [r for r in caplog.records if r.name == ACCESS_LOGGER][-1]


def test_the_access_record_has_every_attribute_makerecord_gives_it(caplog):
    """The record is built from a per-process template, not by makeRecord: a formatter
    using any standard attribute (%(process)d, %(threadName)s, %(module)s...) sees the same."""
    import time
    before = time.time()
    record = _observe_one(caplog)
    reference = logging.getLogger(ACCESS_LOGGER).makeRecord(
        ACCESS_LOGGER, logging.INFO, access_module.__file__, 0, "%s", record.args, None,
        extra={name: getattr(record, name) for name in ACCESS_FIELDS})
    timing = {"created", "msecs", "relativeCreated", "message", "asctime"}  # + caplog's format
    assert set(record.__dict__) - timing == set(reference.__dict__) - timing
    assert {k: v for k, v in record.__dict__.items() if k not in timing} == \
        {k: v for k, v in reference.__dict__.items() if k not in timing}
    assert before <= record.created <= time.time()
    assert record.msecs == int((record.created - int(record.created)) * 1000)
    assert abs(record.relativeCreated - reference.relativeCreated) < 5000
    assert logging.Formatter("%(process)d %(module)s %(levelname)s %(message)s").format(
        record).startswith(f"{os.getpid()} access INFO - \"POST /in\" 202 ")


def test_a_custom_record_factory_is_honoured(caplog):
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        made = previous(*args, **kwargs)
        made.tagged = True
        return made
    logging.setLogRecordFactory(factory)
    try:
        record = _observe_one(caplog)
    finally:
        logging.setLogRecordFactory(previous)
    assert record.tagged is True and record.status == 202


def test_a_forked_child_makes_records_with_its_own_pid(caplog):
    _observe_one(caplog)            # the template exists in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: report the record's pid, never run pytest's teardown
        try:
            record = _observe_one(caplog)
            os.write(write, str(record.process).encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert reported == str(pid)


# -- metrics -----------------------------------------------------------------------------------
def _requests(api: str, status: str) -> float:
    return metrics.REQUESTS.labels(api, "http-post", status)._value.get()


def test_request_counts_reach_the_metric_at_the_flush():
    metrics.flush()
    before = _requests("tally-api", "202")
    for _ in range(3):
        metrics.count_request("tally-api", "http-post", 202)
    metrics.count_request("tally-api", "http-post", 503)
    assert _requests("tally-api", "202") == before   # not yet: once per flush interval
    metrics.flush()
    assert _requests("tally-api", "202") == before + 3
    assert _requests("tally-api", "503") >= 1
    metrics.flush()
    assert _requests("tally-api", "202") == before + 3   # counted once, not per flush


def test_a_scrape_sees_every_request_counted_before_it():
    metrics.count_request("scraped-api", "http-post", 202)
    text, _ = metrics.render()
    assert b'evgate_requests_total{api="scraped-api",entrypoint="http-post",status="202"} 1.0' \
        in text


@pytest.mark.parametrize("amounts", [
    [0.0005, 0.001, 0.003, 0.003, 0.2, 7.0, 30.0],   # edges, the +Inf bucket
    [0.01],
])
def test_tallied_histogram_equals_observing_each(amounts):
    direct_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    direct = Histogram("h", "h", ["api"], buckets=buckets, registry=direct_registry)
    tallied = Histogram("h", "h", ["api"], buckets=buckets, registry=tallied_registry)
    tally = metrics.HistogramTally(tallied.labels("a"))
    for amount in amounts:
        direct.labels("a").observe(amount)
        tally.observe(amount)
    tally.drain()
    tally.drain()   # nothing new: no change

    def samples(registry: CollectorRegistry) -> list:
        return sorted((s.name, tuple(sorted(s.labels.items())), round(s.value, 9))
                      for m in registry.collect() for s in m.samples if "created" not in s.name)
    assert samples(tallied_registry) == samples(direct_registry)


def test_produce_metrics_are_tallied_per_api():
    metrics.flush()
    records_in = metrics.RECORDS_IN.labels("produce-api", "http-post")
    failures = metrics.PRODUCE_FAILURES.labels("produce-api", "http-post")
    before_in, before_failed = records_in._value.get(), failures._value.get()
    metrics.record_produce("produce-api", "http-post", 0.002, acked=5, failed=0)
    metrics.record_produce("produce-api", "http-post", 0.004, acked=0, failed=2)
    metrics.flush()
    assert records_in._value.get() == before_in + 5
    assert failures._value.get() == before_failed + 2


# -- node port ---------------------------------------------------------------------------------
class _Socket:
    def __init__(self, port: int):
        self.port = port
        self.calls = 0

    def getsockname(self) -> tuple[str, int]:
        self.calls += 1
        return ("127.0.0.1", self.port)


def test_the_local_port_is_asked_once_per_connection():
    public, node = _Socket(8082), _Socket(18082)
    assert [local_port({"gunicorn.sock": s}) for s in (public, node, public, node)] == \
        [8082, 18082, 8082, 18082]
    assert (public.calls, node.calls) == (1, 1)


def test_a_socket_that_cannot_be_cached_is_asked_each_time():
    class Slotted:
        __slots__ = ("calls",)

        def __init__(self) -> None:
            self.calls = 0

        def getsockname(self) -> tuple[str, int]:
            self.calls += 1
            return ("127.0.0.1", 18082)

    sock = Slotted()
    assert local_port({"gunicorn.sock": sock}) == local_port({"gunicorn.sock": sock}) == 18082
    assert sock.calls == 2


# -- gunicorn's access log -------------------------------------------------------------------
@pytest.mark.parametrize("enabled", [False, True])
def test_gunicorns_log_request_runs_only_when_its_access_log_is_on(monkeypatch, enabled):
    from gunicorn.workers.ggevent import PyWSGIHandler

    from evgate.workers import StrictWSGIHandler
    calls = []
    monkeypatch.setattr(PyWSGIHandler, "log_request", lambda self: calls.append(self))

    class Log:
        access_log_enabled = enabled

    handler = StrictWSGIHandler.__new__(StrictWSGIHandler)
    handler.server = type("Server", (), {"log": Log()})()
    handler.log_request()
    assert calls == ([handler] if enabled else [])

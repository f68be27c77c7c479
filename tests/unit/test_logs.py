"""Log formatters, request context and secret masking (evgate/logs.py)."""
from __future__ import annotations

import io
import json
import logging

import pytest
from flask import Flask, g

from evgate.config import Config
from evgate.logs import (ACCESS_LOGGER, PLAIN_FORMAT, AccessLine, JsonFormatter, PlainFormatter,
                         RequestContextFilter, configure, format_access, mask_secrets)


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Basic dXNlcjpzM2NyZXQ=", "dXNlcjpzM2NyZXQ="),
    ("headers={'authorization': 'Bearer eyJhbGciOi.payload.sig'}", "eyJhbGciOi.payload.sig"),
    ("proxy-authorization=Digest abcdef123", "abcdef123"),
    ("sent Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== to the receiver", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    ("GET /orders?api-key=k3y-v4lue&cursor=5", "k3y-v4lue"),
    ("X-Gravitee-Api-Key: 0f1e2d3c4b5a", "0f1e2d3c4b5a"),
    ('{"password": "hunter22", "user": "bob"}', "hunter22"),
    ("login failed password=hunter22 for bob", "hunter22"),
    ("sasl.password=pl41n-s3cret", "pl41n-s3cret"),
    ('org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" '
     'password="alice-secret";', "alice-secret"),
    ("client_secret=abc.def.ghi", "abc.def.ghi"),
    ("postgresql+psycopg://evgate:db-pa55@db.internal/evgate", "db-pa55"),
    ("access_token=tok-123456", "tok-123456"),
])
def test_secrets_are_masked(text, secret):
    masked = mask_secrets(text)
    assert secret not in masked
    assert "****" in masked


@pytest.mark.parametrize("text", [
    "deployed API 42 (orders) on ['/orders']",
    "kafka producer p0 started: {'bootstrap.servers': '127.0.0.1:9092', 'acks': 'all'}",
    "client 10.0.0.1 is too slow (1000 messages buffered)",
    "max_tokens reached; keyboard input",
])
def test_ordinary_text_is_unchanged(text):
    assert mask_secrets(text) == text


def test_masking_keeps_the_context_readable():
    assert mask_secrets("Authorization: Basic dXNlcjpwYXNz next") == \
        "Authorization: Basic **** next"
    assert mask_secrets("GET /o?api-key=abc&cursor=5") == "GET /o?api-key=****&cursor=5"
    assert mask_secrets("postgresql://u:p4ss@h/db") == "postgresql://u:****@h/db"


def _record(msg, *args, name="evgate.test", exc_info=None, **extra):
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_has_context_fields_and_masks():
    record = _record("calling %s with %s", "https://hook", "Authorization: Bearer abc.def",
                     api_id="api-1", entrypoint="webhook", transaction_id="tx-9")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "calling https://hook with Authorization: Bearer ****"
    assert (entry["api_id"], entry["entrypoint"], entry["transaction_id"]) == \
        ("api-1", "webhook", "tx-9")
    assert entry["level"] == "info" and entry["logger"] == "evgate.test"


def test_json_formatter_masks_exception_text():
    try:
        raise RuntimeError("connect failed for password=hunter22")
    except RuntimeError:
        import sys
        record = _record("boom", exc_info=sys.exc_info())
    out = JsonFormatter().format(record)
    assert "hunter22" not in out and "RuntimeError" in out


def test_plain_formatter_appends_context():
    record = _record("produce failed", api_id="a1", entrypoint="http-post",
                     transaction_id="t1")
    text = PlainFormatter().format(record)
    assert text.endswith("evgate.test: produce failed [api=a1 entrypoint=http-post tx=t1]")
    assert PlainFormatter().format(_record("plain")).endswith("evgate.test: plain")


def test_access_line_and_json_fields():
    fields = {"method": "POST", "path": "/in?api-key=s3cr3t", "status": 202,
              "duration_ms": 1.234, "bytes": 0, "api_id": "a1", "entrypoint": "http-post",
              "transaction_id": "t1", "client": "10.1.2.3"}
    line = format_access(fields)
    assert line == ('10.1.2.3 "POST /in?api-key=s3cr3t" 202 1.2ms 0B api=a1 '
                    'entrypoint=http-post tx=t1')
    record = _record("%s", line, name=ACCESS_LOGGER, **fields)
    entry = json.loads(JsonFormatter().format(record))
    assert "s3cr3t" not in json.dumps(entry)
    assert entry["status"] == 202 and entry["client"] == "10.1.2.3"
    assert entry["path"] == "/in?api-key=****"
    assert "s3cr3t" not in PlainFormatter().format(record)


def test_context_filter_reads_the_request_context():
    app = Flask("t")
    flt = RequestContextFilter()
    outside = _record("x")
    flt.filter(outside)
    assert getattr(outside, "api_id", None) is None
    with app.app_context():
        g.api_id, g.entrypoint, g.transaction_id = "a1", "sse", "t1"
        inside = _record("y")
        flt.filter(inside)
    assert (inside.api_id, inside.entrypoint, inside.transaction_id) == ("a1", "sse", "t1")


def test_configure_selects_the_format_and_the_access_switch(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure(Config.from_env({"EVGATE_LOG_FORMAT": "json"}))
        logging.getLogger("evgate.x").warning("password=hunter22 rejected")
        logging.getLogger(ACCESS_LOGGER).info("line")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert lines[0]["message"] == "password=**** rejected"
        assert lines[1]["logger"] == ACCESS_LOGGER
        configure(Config.from_env({"EVGATE_ACCESS_LOG": "false"}))
        assert not logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)


def test_gunicorn_logs_are_masked_too():
    """gunicorn formats its own records (evgate's formatters never see them): the filter on
    its loggers masks the message and the exception text first."""
    from evgate.logs import GUNICORN_LOGGERS, mask_gunicorn_logs
    mask_gunicorn_logs()
    mask_gunicorn_logs()   # idempotent
    target = logging.getLogger(GUNICORN_LOGGERS[0])
    assert len(target.filters) == 1
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    target.addHandler(handler)
    try:
        try:
            raise ValueError("cannot reach postgresql://evgate:db-pa55@db.internal/evgate")
        except ValueError:
            target.exception("Error handling request %s", "/orders?api-key=k3y-v4lue")
        target.error("raw_env: %s", ["EVGATE_ADMIN_PASSWORD=adm1n-s3cret"])
    finally:
        target.removeHandler(handler)
    text = stream.getvalue()
    assert "Error handling request /orders?api-key=****" in text
    assert "ValueError" in text
    for secret in ("k3y-v4lue", "db-pa55", "adm1n-s3cret"):
        assert secret not in text


def _generic_plain(record: logging.LogRecord) -> str:
    """What PlainFormatter wrote for a record before its access-line fast path."""
    return mask_secrets(logging.Formatter(PLAIN_FORMAT).format(record))


@pytest.mark.parametrize("fields", [
    {"method": "POST", "path": "/data/ingestion", "status": 202, "duration_ms": 12.345,
     "bytes": 120, "api_id": "a1", "entrypoint": "http-post", "transaction_id": "t1",
     "client": "127.0.0.1"},
    {"method": "GET", "path": "/in?api-key=s3cr3t&x=1", "status": 401, "duration_ms": 0.04,
     "bytes": None, "api_id": None, "entrypoint": None, "transaction_id": None, "client": None},
    {"method": "GET", "path": "/a/Authorization: Bearer abcdefgh", "status": 200,
     "duration_ms": 1e6, "bytes": 0, "api_id": "x", "entrypoint": "sse",
     "transaction_id": "t", "client": "::1"},
])
def test_the_access_line_fast_path_writes_what_the_generic_formatter_writes(fields):
    formatter = PlainFormatter()
    for created in (1764600000.0, 1764600000.999, 1764600001.5, 1764600001.0005):
        record = logging.getLogger(ACCESS_LOGGER).makeRecord(
            ACCESS_LOGGER, logging.INFO, __file__, 0, "%s", (AccessLine(fields),), None,
            extra=fields)
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        fast = formatter.format(record)
        assert fast == _generic_plain(record)
        assert "s3cr3t" not in fast and "abcdefgh" not in fast


def test_plain_time_stamps_are_the_generic_formatter_s_across_seconds():
    formatter, generic = PlainFormatter(), logging.Formatter(PLAIN_FORMAT)
    for created in (1764600000.0, 1764600000.5, 1764600001.25, 1764599999.75, 1.0):
        record = _record("x")
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        assert formatter.formatTime(record) == generic.formatTime(record)
        assert formatter.formatTime(record, "%H") == generic.formatTime(record, "%H")


def test_an_access_record_with_a_traceback_takes_the_generic_way():
    fields = {"method": "GET", "path": "/p", "status": 500, "duration_ms": 1.0, "bytes": 0,
              "api_id": "a", "entrypoint": "http-get", "transaction_id": "t", "client": "c"}
    try:
        raise ValueError("boom password=hunter22")
    except ValueError:
        import sys
        record = logging.getLogger(ACCESS_LOGGER).makeRecord(
            ACCESS_LOGGER, logging.INFO, __file__, 0, "%s", (AccessLine(fields),),
            sys.exc_info(), extra=fields)
    text = PlainFormatter().format(record)
    assert "ValueError: boom" in text and "hunter22" not in text

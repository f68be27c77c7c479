"""The framing rules of evgate/http_framing.py, without a server (tests/integration/
test_http_framing.py sends the same attacks through real gunicorn workers)."""
from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from evgate.http_framing import (FramingError, StrictChunkedInput, body_framing,
                                 error_response, parse_field_line, parse_request_line)


@pytest.mark.parametrize("headers, version, expected", [
    ([], "HTTP/1.1", (None, False)),
    ([("Content-Length", "0")], "HTTP/1.1", (0, False)),
    ([("content-length", "  42 ")], "HTTP/1.0", (42, False)),
    ([("Content-Length", "007")], "HTTP/1.1", (7, False)),
    ([("Transfer-Encoding", "chunked")], "HTTP/1.1", (None, True)),
    ([("transfer-encoding", "Chunked")], "HTTP/1.1", (None, True)),   # names: any case
])
def test_valid_framing(headers, version, expected):
    assert body_framing(headers, version) == expected


@pytest.mark.parametrize("headers, version, status, words", [
    ([("Content-Length", "5"), ("Content-Length", "5")], "HTTP/1.1", 400, "more than one"),
    ([("Content-Length", "5"), ("Content-Length", "6")], "HTTP/1.1", 400, "more than one"),
    ([("Content-Length", "5, 5")], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "+5")], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "-5")], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "5 5")], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "0x5")], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "")], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "\u0665")], "HTTP/1.1", 400, "invalid Content-Length"),  # Arabic 5
    ([("Content-Length", "9" * 19)], "HTTP/1.1", 400, "invalid Content-Length"),
    ([("Content-Length", "5"), ("Transfer-Encoding", "chunked")], "HTTP/1.1", 400, "together"),
    ([("Transfer-Encoding", "xchunked")], "HTTP/1.1", 501, "not supported"),
    ([("Transfer-Encoding", "gzip, chunked")], "HTTP/1.1", 501, "not supported"),
    ([("Transfer-Encoding", "identity")], "HTTP/1.1", 501, "not supported"),
    ([("Transfer-Encoding", "chunked, chunked")], "HTTP/1.1", 400, "more than once"),
    ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], "HTTP/1.1", 400,
     "more than once"),
    ([("Transfer-Encoding", "chunked,")], "HTTP/1.1", 400, "malformed"),
    ([("Transfer-Encoding", "chunked;q=1")], "HTTP/1.1", 400, "malformed"),
    ([("Transfer-Encoding", "chunked")], "HTTP/1.0", 400, "HTTP/1.0"),
    ([("Host", "a"), ("Host", "b")], "HTTP/1.1", 400, "more than one Host"),
])
def test_invalid_framing(headers, version, status, words):
    with pytest.raises(FramingError) as caught:
        body_framing(headers, version)
    assert caught.value.status == status
    assert words in caught.value.message


@pytest.mark.parametrize("line, words", [
    (b"GET  / HTTP/1.1", "malformed request line"),
    (b"GET / HTTP/1.1 ", "malformed request line"),
    (b"GET /a b HTTP/1.1", "malformed request line"),
    (b"GET / HTTP/2.0", "unsupported HTTP version"),
    (b"GET / HTTP/1.1\r", "bare CR"),
    (b"GET /\x00 HTTP/1.1", "malformed request line"),
    (b"G(T / HTTP/1.1", "malformed request line"),
    (b"GET /", "malformed request line"),               # HTTP/0.9
])
def test_invalid_request_lines(line, words):
    with pytest.raises(FramingError, match=words):
        parse_request_line(line)


def test_valid_request_line():
    assert parse_request_line(b"PATCH /a?b=c HTTP/1.0") == ("PATCH", "/a?b=c", "HTTP/1.0")


@pytest.mark.parametrize("line, words", [
    (b" folded", "obsolete line folding"),
    (b"\tfolded", "obsolete line folding"),
    (b"Content-Length : 5", "whitespace before the colon"),
    (b"Content-Length\t: 5", "whitespace before the colon"),
    (b"X-A: a\rb", "bare CR"),
    (b"X-A: a\nb", "bare CR or LF"),
    (b"X-A: a\x00b", "control character"),
    (b"X-A: a\x7fb", "control character"),
    (b": empty name", "malformed"),
    (b"No colon", "without a colon"),
    (b"X(A): b", "malformed"),
])
def test_invalid_field_lines(line, words):
    with pytest.raises(FramingError, match=words):
        parse_field_line(line)


@pytest.mark.parametrize("parse, line", [
    (parse_request_line, b"GET /x?api-key=S3CRET HTTP/1.1 extra"),
    (parse_request_line, b"GET /x?api-key=S3CRET HTTP/9.9"),
    (parse_field_line, b"Authorization Basic S3CRET"),
    (parse_field_line, b"Authorization Basic S3CRET:x"),
    (parse_field_line, b"Authorization: Basic S3CRET\x01"),
    (parse_field_line, b" Authorization: Basic S3CRET"),
])
def test_messages_never_echo_a_credential(parse, line):
    """The message goes to the client and to the log: a key or password must not be in it."""
    with pytest.raises(FramingError) as caught:
        parse(line)
    assert "S3CRET" not in caught.value.message


def test_field_line_strips_ows_only():
    assert parse_field_line(b"X-A: \t a b \t") == (b"X-A", b"a b")
    assert parse_field_line(b"X-A:") == (b"X-A", b"")


def chunked(data: bytes) -> tuple[StrictChunkedInput, io.BufferedReader, list[int]]:
    calls: list[int] = []
    rfile = io.BufferedReader(io.BytesIO(data))
    return StrictChunkedInput(rfile, on_error=lambda: calls.append(1)), rfile, calls


def test_chunked_body_ends_exactly_where_the_next_request_starts():
    body = b'3;a=b;c="d e"\r\nabc\r\n4 ;x\r\nde\nf\r\n0\r\nX-Sum: 1\r\n\r\n'
    stream, rfile, calls = chunked(body + b"GET / HTTP/1.1\r\n")
    assert stream.readline() == b"abcde\n"
    assert stream.read() == b"f"
    assert stream.read() == b""
    assert rfile.read() == b"GET / HTTP/1.1\r\n"
    assert calls == []


@pytest.mark.parametrize("body, words", [
    (b"zz\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    (b"-3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    (b"0x3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    (b" 3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    (b"\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    (b"1" + b"0" * 16 + b"\r\n", "invalid chunk size"),           # 17 hex digits
    (b"3\nabc\r\n0\r\n\r\n", "does not end with CRLF"),
    (b"3;a\rb\r\nabc\r\n0\r\n\r\n", "bare CR"),
    (b"3;a b\r\nabc\r\n0\r\n\r\n", "chunk extension"),
    (b"3;\r\nabc\r\n0\r\n\r\n", "chunk extension"),
    (b"3\r\nabcXY0\r\n\r\n", "not followed by CRLF"),
    (b"0\r\nContent-Length: 5\r\n\r\n", "not allowed in a trailer"),
    (b"0\r\nTransfer-Encoding: chunked\r\n\r\n", "not allowed in a trailer"),
    (b"0\r\nX Y: 5\r\n\r\n", "malformed trailer"),
    (b"0\r\n folded\r\n\r\n", "obsolete line folding"),
    (b"0\r\nX-A: 1\n\r\n", "bare LF"),
])
def test_malformed_chunked_bodies(body, words):
    stream, _, calls = chunked(body + b"GET /smuggled HTTP/1.1\r\n\r\n")
    with pytest.raises(FramingError, match=words) as caught:
        stream.read()
    assert caught.value.status == 400
    assert calls == [1]
    with pytest.raises(FramingError):   # it stays failed: nothing more is read
        stream.read(1)
    assert calls == [1]


@pytest.mark.parametrize("body", [b"3\r\nab", b"3\r\nabc\r\n", b"3\r\nabc\r\n0\r\nX: 1\r\n"])
def test_truncated_chunked_body(body):
    stream, _, calls = chunked(body)
    with pytest.raises(FramingError, match="ended inside"):
        stream.read()
    assert calls == [1]


def test_discard_of_a_malformed_rest_closes_without_raising():
    stream, _, calls = chunked(b"3\r\nabc\r\nzz\r\n")
    assert stream.read(3) == b"abc"
    stream._discard()
    assert calls == [1]


def test_error_response_is_json_and_closes():
    raw = error_response(501, "Transfer-Encoding 'gzip' is not supported")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert b"\r\nConnection: close" in head and b"\r\nContent-Type: application/json" in head
    assert json.loads(body) == {"message": "Transfer-Encoding 'gzip' is not supported",
                                "http_status_code": 501, "key": "http.framing"}


@pytest.mark.parametrize("given, expected", [
    ("gevent", "StrictGeventWorker"),
    ("gevent_pywsgi", "StrictPyWSGIWorker"),
    ("gevent_wsgi", "StrictPyWSGIWorker"),
    ("gunicorn.workers.ggevent.GeventWorker", "StrictGeventWorker"),
    ("evgate.workers.StrictGeventWorker", "StrictGeventWorker"),
])
def test_command_line_worker_class_becomes_evgates(given, expected):
    """`gunicorn -k gevent ...` (the documented plain command) still gets the strict worker."""
    from gunicorn.config import Config as GunicornConfig
    from evgate.gunicorn_settings import _strict_worker_class
    cfg = GunicornConfig()
    cfg.set("worker_class", given)
    server = SimpleNamespace(cfg=cfg, worker_class=cfg.worker_class)
    _strict_worker_class(server)
    assert server.worker_class.__name__ == expected
    assert cfg.worker_class.__name__ == expected

"""Strict HTTP/1.1 message framing (RFC 9112) for evgate's worker classes (evgate/workers.py).

Behind a load balancer, a request whose length two parsers read differently lets an attacker
hide a second request in the body of the first (request smuggling). So the head and the
framing are held to the RFC and anything ambiguous is refused, the connection closed:

- request line `method SP target SP HTTP/1.0|1.1 CRLF`; every head line ends with CRLF, no
  bare CR or LF, no obs-fold, no whitespace before the colon, no control characters;
- at most one Content-Length, 1 to 18 ASCII digits (RFC 9110 8.6 lets a recipient merge
  identical copies; evgate does not: a sender that repeats it is broken or probing);
- Transfer-Encoding exactly `chunked` (501 for any other coding, 400 for a malformed list, a
  repeated `chunked` or chunked on HTTP/1.0), never together with Content-Length;
- chunk sizes of 1 to 16 hex digits, chunk extensions per RFC 9112 7.1.1, CRLF after each
  chunk, trailers well-formed and never framing or routing fields.

`FramingError` is a `BadRequestError`: when it is raised while the application reads the body,
the application answers it as any 400 (JSON), and the worker closes the connection.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable, Iterable

from .errors import BadRequestError

logger = logging.getLogger(__name__)

MAX_LINE = 8190            # request line and each header line (gunicorn's defaults)
MAX_FIELDS = 100
MAX_CONTENT_LENGTH_DIGITS = 18   # < 2**63: no overflow anywhere downstream
MAX_CHUNK_SIZE_DIGITS = 16

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_REQUEST_LINE_RE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) (HTTP/\d\.\d)")
_FIELD_LINE_RE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*", re.DOTALL)
_BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_EXT_RE = re.compile(rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN
                           + rb"|" + _QUOTED + rb"))?)*")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,%d}" % MAX_CHUNK_SIZE_DIGITS)
_DIGITS_RE = re.compile(r"[0-9]{1,%d}" % MAX_CONTENT_LENGTH_DIGITS)
# RFC 9110 6.5.1: fields a trailer must not carry (framing, routing, authentication)
_FORBIDDEN_TRAILERS = frozenset((b"host", b"content-length", b"transfer-encoding", b"trailer",
                                 b"authorization", b"te", b"content-type", b"connection"))
_SINGLETONS = ("host",)
_REASONS = {400: "Bad Request", 408: "Request Timeout", 414: "URI Too Long",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented"}


class FramingError(BadRequestError):
    """The request's head or framing breaks RFC 9112: answered, then the connection closes."""

    key = "http.framing"

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def shown(raw: bytes | str, limit: int = 60) -> str:
    """A bit of client input, safe to echo in a message or a log line."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return repr(text if len(text) <= limit else text[:limit] + "...")


def error_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that ends the connection: the JSON body evgate's own
    errors use (`{"message", "http_status_code", "key"}`)."""
    body = json.dumps({"message": message, "http_status_code": status,
                       "key": FramingError.key}).encode()
    return (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode("latin-1") + body


# -- head ------------------------------------------------------------------------------------
def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """`line` without its CRLF -> (method, target, version)."""
    if b"\r" in line or b"\n" in line:
        raise FramingError("bare CR or LF in the request line")
    match = _REQUEST_LINE_RE.fullmatch(line)
    if match is None:   # not echoed: the target may carry a key in its query
        raise FramingError("malformed request line: METHOD SP target SP HTTP/1.x expected")
    method, target, version = (part.decode("latin-1") for part in match.groups())
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise FramingError(f"unsupported HTTP version {shown(version)}")
    return method, target, version


def parse_field_line(line: bytes, where: str = "header") -> tuple[bytes, bytes]:
    """One field line without its CRLF -> (name, value with OWS removed)."""
    if line[:1] in (b" ", b"\t"):
        raise FramingError(f"obsolete line folding in a {where} (RFC 9112 5.2)")
    if b"\r" in line or b"\n" in line:
        raise FramingError(f"bare CR or LF in a {where} line")
    match = _FIELD_LINE_RE.fullmatch(line)
    if match is None:
        name = line.split(b":", 1)[0]
        if _TOKEN_RE.fullmatch(name.rstrip(b" \t")) and b":" in line:
            raise FramingError(f"whitespace before the colon of {where} {shown(name)}")
        if b":" not in line:
            raise FramingError(f"{where} line without a colon")
        # only the name's first word: a value (a credential, say) is never echoed or logged
        raise FramingError(f"malformed {where} name {shown((name.split() or [b''])[0], 40)}")
    name, value = match.groups()
    if _BAD_VALUE_RE.search(value):
        raise FramingError(f"control character in {where} {shown(name)}")
    return name, value


def read_field_lines(readline: Callable[[int], bytes], where: str = "header",
                     max_fields: int = MAX_FIELDS) -> list[tuple[bytes, bytes]]:
    """Read field lines up to the empty line that ends them."""
    fields: list[tuple[bytes, bytes]] = []
    while True:
        line = readline(MAX_LINE + 3)
        if line == b"\r\n":
            return fields
        if not line.endswith(b"\r\n"):
            if len(line) > MAX_LINE + 1:
                raise FramingError(f"{where} line over {MAX_LINE} bytes", 431)
            if line.endswith(b"\n"):
                raise FramingError(f"bare LF ends a {where} line")
            raise FramingError(f"the connection ended inside the {where}s")
        if len(fields) >= max_fields:
            raise FramingError(f"more than {max_fields} {where} fields", 431)
        fields.append(parse_field_line(line[:-2], where))


def body_framing(headers: Iterable[tuple[str, str]], version: str) -> tuple[int | None, bool]:
    """(content_length, chunked) of a request, from its (name, value) headers (any case).

    Raises FramingError for everything RFC 9112 6.1/6.3 calls invalid framing, and for a
    transfer coding evgate does not implement (501)."""
    lengths: list[str] = []
    codings: list[str] = []
    seen: set[str] = set()
    for name, value in headers:
        lname = name.lower()
        if lname in _SINGLETONS:
            if lname in seen:
                raise FramingError(f"more than one {name} header")
            seen.add(lname)
        if lname == "content-length":
            lengths.append(value.strip(" \t"))
        elif lname == "transfer-encoding":
            codings.extend(part.strip(" \t") for part in value.split(","))
    if len(lengths) > 1:
        raise FramingError("more than one Content-Length header (RFC 9112 6.3)")
    if codings:
        if lengths:
            raise FramingError("Content-Length and Transfer-Encoding together (RFC 9112 6.1)")
        if any(not _TOKEN_RE.fullmatch(c.encode("latin-1")) for c in codings):
            raise FramingError(f"malformed Transfer-Encoding {shown(', '.join(codings))}")
        unknown = [c for c in codings if c.lower() != "chunked"]
        if unknown:
            raise FramingError(f"Transfer-Encoding {shown(unknown[0])} is not supported; "
                               "only chunked is", 501)
        if len(codings) > 1:
            raise FramingError("Transfer-Encoding names chunked more than once")
        if version != "HTTP/1.1":
            raise FramingError("Transfer-Encoding on an HTTP/1.0 request (RFC 9112 6.1)")
        return None, True
    if lengths:
        if not _DIGITS_RE.fullmatch(lengths[0]):
            raise FramingError(f"invalid Content-Length {shown(lengths[0])}: 1 to "
                               f"{MAX_CONTENT_LENGTH_DIGITS} digits expected")
        return int(lengths[0]), False
    return None, False


# -- chunked body ----------------------------------------------------------------------------
class StrictChunkedInput:
    """`wsgi.input` of a chunked request under pywsgi (gevent's own Input accepts malformed
    chunks). Reads `rfile` (a buffered socket reader) exactly to the end of the body;
    `on_error` is called once when the body turns out malformed."""

    def __init__(self, rfile: Any, *, on_error: Callable[[], None],
                 continue_socket: Any = None):
        self.rfile = rfile
        self.on_error = on_error
        self.continue_socket = continue_socket   # Expect: 100-continue, sent on first read
        self.left = 0          # bytes left in the current chunk
        self.done = False
        self.failed: FramingError | None = None
        self.pending = b""     # read by readline beyond the line it returned

    # the state machine ---------------------------------------------------------------------
    def _fail(self, message: str) -> FramingError:
        self.failed = FramingError(message)
        self.done = True
        self.on_error()
        return self.failed

    def _chunk_size(self) -> int:
        line = self.rfile.readline(MAX_LINE + 3)
        if not line.endswith(b"\r\n"):
            if not line:
                raise self._fail("the connection ended inside the chunked body")
            raise self._fail(f"chunk size line {shown(line, 20)} does not end with CRLF")
        size, semicolon, extensions = line[:-2].partition(b";")
        if b"\r" in line[:-2] or b"\n" in line[:-2]:
            raise self._fail("bare CR or LF in a chunk size line")
        if semicolon:
            size = size.rstrip(b" \t")   # BWS before chunk-ext (RFC 9112 7.1.1)
            if not _CHUNK_EXT_RE.fullmatch(b";" + extensions):
                raise self._fail(f"malformed chunk extension {shown(extensions, 20)}")
        if not _HEX_RE.fullmatch(size):
            raise self._fail(f"invalid chunk size {shown(size, 20)}: 1 to "
                             f"{MAX_CHUNK_SIZE_DIGITS} hex digits expected")
        return int(size, 16)

    def _trailers(self) -> None:
        try:
            fields = read_field_lines(self.rfile.readline, "trailer")
        except FramingError as exc:
            raise self._fail(exc.message) from None
        for name, _value in fields:
            if name.lower() in _FORBIDDEN_TRAILERS:
                raise self._fail(f"{shown(name)} is not allowed in a trailer (RFC 9110 6.5.1)")

    def _read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes of chunk data; b"" at the end of the body."""
        if self.failed is not None:
            raise self.failed
        if self.continue_socket is not None:
            sock, self.continue_socket = self.continue_socket, None
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self.done and self.left == 0:
            self.left = self._chunk_size()
            if self.left == 0:
                self._trailers()
                self.done = True
        if self.done:
            return b""
        data = self.rfile.read(min(limit, self.left))
        if not data:
            raise self._fail("the connection ended inside a chunk")
        self.left -= len(data)
        if self.left == 0 and self.rfile.read(2) != b"\r\n":
            raise self._fail("chunk data is not followed by CRLF")
        return data

    # the file-like interface WSGI asks for -------------------------------------------------
    def read(self, size: int | None = None) -> bytes:
        wanted = -1 if size is None or size < 0 else size
        parts = [self.pending[:wanted] if wanted >= 0 else self.pending]
        self.pending = self.pending[len(parts[0]):]
        got = len(parts[0])
        while wanted < 0 or got < wanted:
            data = self._read_some(65536 if wanted < 0 else wanted - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def readline(self, size: int | None = None) -> bytes:
        limit = -1 if size is None or size < 0 else size
        line = self.pending
        while b"\n" not in line and (limit < 0 or len(line) < limit):
            data = self._read_some(8192)
            if not data:
                break
            line += data
        end = line.find(b"\n") + 1 or len(line)
        if limit >= 0:
            end = min(end, limit)
        line, self.pending = line[:end], line[end:]
        return line

    def readlines(self, hint: Any = None) -> list[bytes]:
        return list(self)

    def __iter__(self) -> "StrictChunkedInput":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _discard(self) -> None:
        """pywsgi, after the response: skip what the application left unread (the next
        request starts behind it). A malformed rest closes the connection (on_error)."""
        self.continue_socket = None   # the application did not ask for the body
        if self.failed is not None:
            return
        try:
            while self._read_some(65536):
                pass
        except FramingError:
            pass
        except OSError:
            self.on_error()


class GuardedBody:
    """gunicorn's request body (`wsgi.input` under `-k gevent`): its parse errors (a malformed
    chunk or trailer) become a FramingError for the application and close the connection."""

    def __init__(self, body: Any, on_error: Callable[[], None]):
        self._body = body
        self._on_error = on_error

    def _guard(self, method: Callable, *args: Any) -> Any:
        from gunicorn.http.errors import ParseException
        try:
            return method(*args)
        except ParseException as exc:
            self._on_error()
            raise FramingError(f"malformed chunked body: {exc}") from None

    def read(self, size: int | None = None) -> bytes:
        return self._guard(self._body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._guard(self._body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._guard(self._body.readlines, size)

    def __iter__(self) -> "GuardedBody":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)   # `failed`, read by gunicorn's parser

"""http-get: pages of messages by polling (GET).

Configuration: `messagesLimitCount` (500) and `messagesLimitDurationMs` (5000): a request
collects messages until it has `min(limit, messagesLimitCount)` or the duration is over, then
answers; `headersInPayload`, `metadataInPayload` (false) add those to each item.
Query: `?limit=N` (a positive integer, capped by messagesLimitCount), `?cursor=C` (resume right
after the message C; without it: the live tail, or the beginning with
`autoOffsetReset: earliest`). The answer's `nextCursor` is where the next request continues
(the last message returned, or the start position when the page is empty), so polling with it
loses nothing and repeats nothing.

Long polling, opt-in (RFC 7240, as Zilla's http-kafka): with `Prefer: wait=N` a page answers as
soon as it has at least one message (with what is already there, up to the limit), or after N
seconds (at most MAX_WAIT) with an empty page whose `nextCursor` is where to continue; the
answer carries `Preference-Applied: wait=N`. Without it Gravitee's rule stays: a page waits for
`min(limit, messagesLimitCount)` messages or `messagesLimitDurationMs`.

Pages are served by the worker's shared catch-up readers (evgate/kafka/consumer_pool.py): the
reader that served a page stays warm where the page ended and reads the next page ahead, so
following `nextCursor` through a backlog costs no consumer per page; cursors stay stateless
(any node can answer any page, a cold one just starts a reader).

Pages built ahead: once a full JSON page is written, the page that starts at its `nextCursor`
(same entrypoint, limit and format) is built from the same reader while the client reads the
current one, and kept in the worker's bounded page cache (EVGATE_STREAM_PAGE_PREFETCH_KIB, at
most 2 s). A request for exactly that page takes it after it passed the plan, security and
request-phase checks like any other, and only when nothing can make its bytes differ for it:
no subscribe-phase step applies to its context (a plan's filter or transform), no client
identifier (consumer groups), QoS other than `none`. Building ahead never starts a reader
(`join_stream`: the warm reader or nothing).

Format by `Accept`: application/json (also `*/*`), application/xml or text/xml, text/plain (also
when there is no Accept header); anything else is 400. JSON:
`{"items":[{"id","content","headers"?,"metadata"?}],"pagination":{"nextCursor","limit"}}`.
A tombstone (a record with a null value) is an item with `"content": null, "deleted": true`
(XML `<deleted>true</deleted>` instead of `<content>`, text `deleted: true`).
"""
from __future__ import annotations

import json
import logging
import time
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

import gevent
from flask import Response

from ..core.stream import StreamItem, SubscriptionClosed
from ..definition.plugin_config import Flag, PluginConfiguration, integer
from ..errors import BackendUnavailableError, BadRequestError
from ..core.message import Message
from ..observability.metrics import records_out_tally
from .base import Entrypoint
from .streaming import SubscribeView, client_identifier, open_subscription

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)

MAX_WAIT = 60   # seconds a `Prefer: wait=N` page may wait at most
# seconds a page built ahead may take to collect the records its reader already holds
PREFETCH_WAIT = 0.5
# bytes that JSON-encode as themselves: printable ASCII but `"` and `\`
_JSON_SAFE = bytes(b for b in range(0x20, 0x7f) if b not in (0x22, 0x5c))
_JSON_SAFE_NL = _JSON_SAFE + b"\n"
# printable ASCII: json.dumps escapes only `"` and `\` of these
_JSON_PRINTABLE = bytes(range(0x20, 0x7f))
_CONTENT = attrgetter("content")
_CURSOR = attrgetter("cursor")
_ITEM = (b'{"id":"', None, b'","content":"', None, b'"},')


def _escape_quotes(text: bytes) -> bytes:
    """The JSON string body of printable-ASCII text, as json.dumps writes it: `\\` then `"`
    escaped, by two C passes (~0.4 us a KiB against ~5 us for json.dumps). Other bytes pass
    as they are: the callers checked there are none but the page's newline separators."""
    return text.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


def _json_items(items: list[StreamItem], head: bytes = b"", tail: bytes = b"") -> bytes | None:
    """`head{"id":"C","content":"V"},...tail` for a page of printable-ASCII records without
    tombstones whose cursors are their own JSON strings, else None (the per-record
    fragments then: non-ASCII, control characters). The contents are made JSON strings for
    the whole page at once:

    - without `"` or `\\` (text, base64, numbers): each content as it is;
    - with them (a JSON record, the common case of an API): the page's contents joined by a
      newline (which none contains: it is not printable), two `replace` passes, split
      again (1 KiB JSON records by per-record fragments cost ~6 us each, ~3 ms a page;
      docs/benchmarks.md, Polling).

    One list of separators, the cursors and the contents filled in by slice assignment,
    joined once with `head` and `tail` (a page is ~540 KB: a second join for them copied it
    all again)."""
    contents = list(map(_CONTENT, items))
    if None in contents:                      # a tombstone: `"deleted": true`
        return None
    joined_cursors = "\n".join(map(_CURSOR, items)).encode()
    cursors = joined_cursors.split(b"\n")
    if len(cursors) != len(items) or not joined_cursors.isascii() \
            or joined_cursors.translate(None, _JSON_SAFE_NL):
        return None
    if not all(map(bytes.isalnum, contents)):     # stops at a record's first other byte
        joined = b"".join(contents)           # ~40 us for 500 KiB; one C pass to check
        if not joined.isascii():
            return None
        unsafe = joined.translate(None, _JSON_SAFE)
        if unsafe.translate(None, b'"\\'):     # control characters
            return None
        if unsafe:
            # quotes or backslashes: escaped as json.dumps does, for the whole page
            contents = _escape_quotes(b"\n".join(contents)).split(b"\n")
    parts = list(_ITEM) * len(items)
    parts[1::5] = cursors
    parts[3::5] = contents
    parts[-1] = b'"}' + tail
    parts[0] = head + parts[0]
    return b"".join(parts)


def _collect(subscription: Any, limit: int, deadline: float, long_poll: bool
             ) -> list[StreamItem]:
    """Up to `limit` items until `deadline`; with `long_poll`, as soon as there is one."""
    items: list[StreamItem] = []
    while len(items) < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if long_poll and items:
            remaining = 0     # long polling: answer with what is already there
        try:
            got = subscription.get(timeout=remaining, limit=limit - len(items))
        except SubscriptionClosed as closed:
            if closed.kind == "error" and not items:
                raise BackendUnavailableError(closed.detail or "Kafka is unreachable")
            break
        if not got and remaining == 0:
            break
        items.extend(got)
    return items


class _Label:
    """What `join_stream` reads of a context (its log label) when the request is over."""

    __slots__ = ("transaction_id",)

    def __init__(self, transaction_id: str | None):
        self.transaction_id = transaction_id


def prefer_wait(headers: Any) -> int | None:
    """The `wait` preference of the request's Prefer header(s) in seconds, or None (RFC 7240:
    a preference that is not understood is ignored)."""
    for value in headers.getlist("Prefer"):
        for preference in value.split(","):
            name, _, raw = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() == "wait":
                raw = raw.strip().strip('"')
                if raw.isdigit() and len(raw) <= 6:
                    return min(int(raw), MAX_WAIT)
    return None


_FORMATS = {"application/json": "json", "*/*": "json", "application/*": "json",
            "application/xml": "xml", "text/xml": "xml", "text/plain": "plain", "text/*": "plain"}


def negotiate(accept: str | None) -> str:
    """json | xml | plain, by the client's Accept header (quality values honoured)."""
    if accept is None or not accept.strip():
        return "plain"
    choices = []
    for index, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        quality = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if media in _FORMATS and quality > 0:
            choices.append((-quality, index, _FORMATS[media]))
    if not choices:
        raise BadRequestError(f"unsupported Accept {accept[:100]!r}: use application/json, "
                              "application/xml or text/plain", key="UNSUPPORTED_ACCEPT")
    return min(choices)[2]


AtLeastOne = integer(1, "must be an integer >= 1")


class HttpGetConfiguration(PluginConfiguration):
    messagesLimitCount: AtLeastOne = None
    messagesLimitDurationMs: AtLeastOne = None
    headersInPayload: Flag = False
    metadataInPayload: Flag = False


class HttpGetEntrypoint(Entrypoint):
    type = "http-get"
    configuration_model = HttpGetConfiguration
    modes = frozenset({"subscribe"})
    methods = frozenset({"GET"})
    priority = 30
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})
    # a page is one response body: no request context needed (evgate/gateway/wsgi_dispatch.py)
    raw_wsgi = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        conf = self.configuration
        self.limit_count = conf.get("messagesLimitCount") or 500
        self.limit_duration = (conf.get("messagesLimitDurationMs") or 5000) / 1000
        self.headers_in_payload = bool(conf.get("headersInPayload", False))
        self.metadata_in_payload = bool(conf.get("metadataInPayload", False))

    def handle(self, ctx: "ExecutionContext") -> Response:
        request = ctx.request
        fmt = negotiate(request.headers.get("Accept"))
        limit = self.limit_count
        raw_limit = request.args.get("limit")
        if raw_limit is not None:
            if not raw_limit.strip().isdigit() or int(raw_limit) < 1:
                raise BadRequestError("limit must be a positive integer", key="INVALID_LIMIT")
            limit = min(int(raw_limit), self.limit_count)
        cursor = request.args.get("cursor") or None
        wait = prefer_wait(request.headers)
        started = time.monotonic()
        cache = self._page_cache(ctx, fmt)
        response = None
        if cache is not None and cursor is not None:
            response = self._built_page(cache, cursor, limit, wait)
        if response is None:
            response = self._page(ctx, fmt, cursor, limit, wait, started, cache)
        if wait is not None:
            response.headers["Preference-Applied"] = f"wait={wait}"
        return response

    def _page(self, ctx: "ExecutionContext", fmt: str, cursor: str | None, limit: int,
              wait: int | None, started: float, cache: Any) -> Response:
        subscription = open_subscription(self, ctx, cursor)
        try:
            deadline = started + (self.limit_duration if wait is None else wait)
            items = _collect(subscription, limit, deadline, wait is not None)
            for item in items:
                subscription.delivered(item)
        finally:
            subscription.close("closed")
        view = SubscribeView(ctx)
        next_cursor = items[-1].cursor if items else subscription.start_cursor
        if fmt == "json" and not view.active:
            response = self._json_page(items, next_cursor, limit)
            if cache is not None and len(items) == limit:
                self._build_next(response, cache, ctx, next_cursor, limit)
        else:
            page = [(message, item.cursor) for item in items
                    for message in view.messages(item.message)]
            response = self._render(fmt, page, next_cursor, limit)
        return response

    # -- pages built ahead --------------------------------------------------------------------
    def _page_cache(self, ctx: "ExecutionContext", fmt: str) -> Any:
        """The worker's page cache when this request's page bytes depend on nothing but the
        key (entrypoint, cursor, limit): a JSON page, QoS other than `none` (which ignores
        the cursor), no client identifier (a consumer group: the cursor is only checked), no
        subscribe-phase step for this client (the API's or its plan's flows: a filter, a
        transform); else None."""
        if fmt != "json" or self.qos == "none":
            return None
        cache = getattr(self.api.endpoint, "page_cache", None)
        if cache is None or not cache.enabled or client_identifier(ctx) is not None \
                or self.api.has_message_steps(ctx, "subscribe"):
            return None
        return cache

    def _built_page(self, cache: Any, cursor: str, limit: int,
                    wait: int | None) -> Response | None:
        """The page built ahead for exactly this request, or None. A long-polling request
        does not wait for a page still being built (it answers with what is there)."""
        page = cache.take((self, cursor, limit), ready_only=wait is not None)
        if page is None:
            return None
        if not page.ready.wait(PREFETCH_WAIT + 0.5) or page.body is None:
            return None
        records_out_tally(self.api.id, self.type).n += page.count
        response = Response(page.body, status=200, mimetype="application/json")
        self._build_next(response, cache, None, page.next_cursor, limit)
        return response

    def _build_next(self, response: Response, cache: Any, ctx: "ExecutionContext | None",
                    cursor: str | None, limit: int) -> None:
        """Build the page at `cursor` once `response` is written (the client then reads and
        parses it: that time is free on the gateway)."""
        key = (self, cursor, limit)
        if cursor is None or key in cache.pages:
            return
        label = getattr(ctx, "transaction_id", None)

        def start() -> None:
            # the entry first: a request that comes before the build ran waits for it
            page = cache.begin(key)
            if page is not None:
                gevent.spawn(self._build, cache, key, page, label)
        response.call_on_close(start)

    def _build(self, cache: Any, key: tuple, page: Any, label: str | None) -> None:
        """A full page at the key's cursor from the reader already there, into the cache,
        when that reader already holds it; else nothing is kept (the request for it then
        waits for records as usual)."""
        _entrypoint, cursor, limit = key
        body = None
        count = 0
        next_cursor = None
        try:
            subscription = self.api.endpoint.join_stream(
                _Label(label), cursor, capacity=self.api.runtime.config.stream_client_buffer,
                min_records=limit)
            if subscription is not None:
                try:
                    items = _collect(subscription, limit, time.monotonic() + min(
                        PREFETCH_WAIT, self.limit_duration), False)
                    if len(items) == limit:
                        # the reader keeps reading ahead from this page's end
                        subscription.last_cursor = next_cursor = items[-1].cursor
                        body = self._json_body(items, next_cursor, limit)
                        count = len(items)
                finally:
                    subscription.close("closed")
        except Exception:  # noqa: BLE001 - best effort, on a greenlet of its own
            logger.debug("building the page at %s ahead failed", cursor, exc_info=True)
            body = None
        finally:
            cache.finish(key, page, body, count, next_cursor)

    def _json_page(self, items: list[StreamItem], next_cursor: str | None,
                   limit: int) -> Response:
        return Response(self._json_body(items, next_cursor, limit), status=200,
                        mimetype="application/json")

    def _json_body(self, items: list[StreamItem], next_cursor: str | None,
                   limit: int) -> bytes:
        """The JSON page as ONE bytes join, without a dict or a fragment per item: the
        contents of all its records are made JSON strings at once (`_json_items`: as they
        are, or escaped for the whole page) and put together with constant separators and
        the cursors by slice assignment, so the per-record work is C (json.dumps costs ~5 us
        per 1 KiB record). Pages with a tombstone, non-ASCII or control characters, headers
        or metadata in the payload, or a cursor that is not its own JSON string are joined
        from per-record fragments (`_json_fragment`). Nothing is cached on the shared items: a
        cached fragment doubled what a reader's ring holds, outside its memory bound
        (docs/benchmarks.md, Polling). The item's Message is never built for it."""
        tail = b'],"pagination":%s}' % json.dumps(
            {"nextCursor": next_cursor, "limit": limit}).encode()
        if items and not (self.headers_in_payload or self.metadata_in_payload):
            page = _json_items(items, b'{"items":[', tail)
            if page is not None:
                return page
        return b"".join((b'{"items":[', b",".join(map(self._json_fragment, items)), tail))

    def _json_fragment(self, item: StreamItem) -> bytes:
        if self.headers_in_payload or self.metadata_in_payload:
            return json.dumps(self._item(item.message, item.cursor)).encode()
        content = item.content
        cursor = item.cursor.encode()
        if content is None or not cursor.isascii() or cursor.translate(None, _JSON_SAFE):
            return json.dumps(self._item(item.message, item.cursor)).encode()
        # isalnum (no copy, stops at the first other byte) before the full check
        if content.isalnum() or (content.isascii() and not content.translate(None, _JSON_SAFE)):
            return b'{"id":"%s","content":"%s"}' % (cursor, content)
        if content.isascii() and not content.translate(None, _JSON_PRINTABLE):
            # printable ASCII with quotes or backslashes (a JSON record, typically)
            return b'{"id":"%s","content":"%s"}' % (cursor, _escape_quotes(content))
        # what json.dumps writes for the string, without building a dict per item (3x faster)
        return b'{"id":"%s","content":%s}' % (cursor, encode_basestring_ascii(
            content.decode("utf-8", errors="replace")).encode())

    def _item(self, message: Message, cursor: str) -> dict[str, Any]:
        item: dict[str, Any] = {"id": cursor, "content": None if message.tombstone else
                                message.content.decode("utf-8", errors="replace")}
        if message.tombstone:   # a deletion (null value): null content, never "" (docstring)
            item["deleted"] = True
        if self.headers_in_payload:
            item["headers"] = message.headers
        if self.metadata_in_payload:
            item["metadata"] = message.metadata
        return item

    def _render(self, fmt: str, page: list[tuple[Message, str]], next_cursor: str | None,
                limit: int) -> Response:
        items = [self._item(m, c) for m, c in page]
        pagination = {"nextCursor": next_cursor, "limit": limit}
        if fmt == "json":
            body = json.dumps({"items": items, "pagination": pagination})
            return Response(body, status=200, mimetype="application/json")
        if fmt == "xml":
            return Response(_xml(items, pagination), status=200, mimetype="application/xml")
        return Response(_plain(items, pagination), status=200, mimetype="text/plain")


def _xml(items: list[dict[str, Any]], pagination: dict[str, Any]) -> str:
    out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<response><items>"]
    for item in items:
        if item["content"] is None:
            out.append(f"<item><id>{escape(item['id'])}</id><deleted>true</deleted>")
        else:
            out.append(f"<item><id>{escape(item['id'])}</id><content>"
                       f"{escape(item['content'])}</content>")
        if "headers" in item:
            out.append("<headers>" + "".join(
                f"<header name={quoteattr(name)}>{escape(value)}</header>"
                for name, values in item["headers"].items() for value in values) + "</headers>")
        if "metadata" in item:
            out.append("<metadata>" + "".join(
                f"<entry key={quoteattr(str(key))}>{escape(str(value))}</entry>"
                for key, value in item["metadata"].items()) + "</metadata>")
        out.append("</item>")
    out.append("</items><pagination>")
    if pagination["nextCursor"] is not None:
        out.append(f"<nextCursor>{escape(pagination['nextCursor'])}</nextCursor>")
    out.append(f"<limit>{pagination['limit']}</limit></pagination></response>")
    return "".join(out)


def _plain(items: list[dict[str, Any]], pagination: dict[str, Any]) -> str:
    lines = ["items:"]
    for item in items:
        lines += ["item:", f"id: {item['id']}", "deleted: true" if item["content"] is None
                  else f"content: {item['content']}"]
        for name, values in (item.get("headers") or {}).items():
            for value in values:
                lines.append(f"header: {name}: {value}")
        for key, value in (item.get("metadata") or {}).items():
            lines.append(f"metadata: {key}: {value}")
    lines += ["pagination:", f"nextCursor: {pagination['nextCursor'] or ''}",
              f"limit: {pagination['limit']}"]
    return "\n".join(lines) + "\n"

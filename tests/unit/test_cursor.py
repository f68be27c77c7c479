import pytest
from hypothesis import given, strategies as st

from evgate.kafka import cursor as cursors


def test_encode_is_base64url_of_sorted_pairs():
    position = {("demo", 1): 17, ("demo", 0): 41}
    assert cursors.to_text(position) == "demo@0#41,demo@1#17"
    encoded = cursors.encode(position)
    assert "=" not in encoded and "@" not in encoded
    assert cursors.parse(encoded) == position


def test_plain_form_is_accepted():
    assert cursors.parse("t.a-b_c@3#-1") == {("t.a-b_c", 3): -1}


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "demo@0", "demo@x#1", "demo@0#1,demo@0#2",
                                 "ZGVtbw", "demo@0#-5", "a b@0#1"])
def test_malformed_cursors_raise(bad):
    with pytest.raises(cursors.CursorError):
        cursors.parse(bad)


def test_topics_are_checked():
    with pytest.raises(cursors.CursorError, match="other"):
        cursors.parse("other@0#1", topics=["demo"])


def test_covers():
    assert cursors.covers({("t", 0): 5, ("t", 1): 3}, {("t", 0): 5, ("t", 1): 2})
    assert not cursors.covers({("t", 0): 4}, {("t", 0): 5})
    assert not cursors.covers({("t", 0): 9}, {("t", 1): 0})


@given(st.dictionaries(st.tuples(st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True),
                                 st.integers(0, 999)),
                       st.integers(-1, 2**62), min_size=1, max_size=8))
def test_round_trip(position):
    assert cursors.parse(cursors.encode(position)) == position
    assert cursors.parse(cursors.to_text(position)) == position


@pytest.mark.parametrize("topic", ["a", "ab", "abc", "orders.v1", "t-" * 40])
@pytest.mark.parametrize("start", [0, 7, 95, 998, 99_990, 10**12, 10**18 - 5])
def test_a_batchs_cursors_are_what_encode_writes_for_each_offset(topic, start):
    """A one-partition reader encodes a batch's cursors in one base64 pass: every length of
    the text modulo 3 (the NUL padding), and batches crossing a power of ten."""
    offsets = list(range(start, start + 12))
    assert cursors.encode_offsets(topic, 3, offsets) == [
        cursors.encode({(topic, 3): offset}) for offset in offsets]


@given(st.lists(st.integers(min_value=0, max_value=10**15), max_size=40),
       st.integers(min_value=0, max_value=99_999))
def test_batch_cursors_round_trip_in_any_order(offsets, partition):
    encoded = cursors.encode_offsets("demo_t", partition, offsets)
    assert encoded == [cursors.encode({("demo_t", partition): o}) for o in offsets]
    assert [cursors.parse(c) for c in encoded] == [{("demo_t", partition): o} for o in offsets]


def test_prefer_wait_is_read_as_rfc_7240_says():
    from werkzeug.datastructures import Headers

    from evgate.entrypoints.http_get import MAX_WAIT, prefer_wait
    cases = {"wait=5": 5, "respond-async, wait=10": 10, "WAIT = 3": 3, 'wait="2"': 2,
             "wait=999999": MAX_WAIT, "handling=lenient; wait=7": None, "nowait=5": None,
             "wait=x": None, "wait=-1": None, "wait=1234567": None, "": None}
    for value, expected in cases.items():
        assert prefer_wait(Headers([("Prefer", value)])) == expected, value
    assert prefer_wait(Headers()) is None


def test_json_page_fragments_decode_like_json_dumps():
    """The fast path (content that is its own JSON string) and the escaping fallback give
    the same items as json.dumps would."""
    import json

    from evgate.core.stream import StreamItem
    from evgate.entrypoints.http_get import HttpGetEntrypoint
    from evgate.core.message import Message
    entrypoint = HttpGetEntrypoint.__new__(HttpGetEntrypoint)
    entrypoint.headers_in_payload = entrypoint.metadata_in_payload = False
    for content in (b"plain ascii 123", b"alnum123", b'quote " and \\ backslash',
                    b"ctl\x01\n\t", "été ☃".encode(), b"\xff\xfe bad utf-8", b"", b"\x7f"):
        for cursor in ("Y3Vyc29y", 'odd "cursor\\'):
            item = StreamItem(Message(content=content), cursor)
            fragment = entrypoint._json_fragment(item)
            assert json.loads(fragment) == {
                "id": cursor, "content": content.decode("utf-8", errors="replace")}
    tombstone = StreamItem(Message(tombstone=True), "Y3Vyc29y")
    assert json.loads(entrypoint._json_fragment(tombstone)) == {
        "id": "Y3Vyc29y", "content": None, "deleted": True}


def test_json_pages_decode_like_json_dumps_whatever_the_records():
    """A whole page (the one-join path for records that are their own JSON strings, the
    per-record fragments otherwise) decodes to the items json.dumps would give, for pages
    mixing plain, escaped and deleted records and cursors that are not plain; and a page
    caches nothing on the shared items (a ring record held a copy of its fragment)."""
    import json

    from evgate.core.message import Message
    from evgate.core.stream import StreamItem
    from evgate.entrypoints.http_get import HttpGetEntrypoint
    entrypoint = HttpGetEntrypoint.__new__(HttpGetEntrypoint)
    entrypoint.headers_in_payload = entrypoint.metadata_in_payload = False
    plain = [b"alnum%d" % i for i in range(7)] + [b"with space, comma: {x}", b""]
    odd = [b'{"json": "record", "n": 1}', b"back\\slash", b"ctl\x01", "\u00e9t\u00e9".encode(),
           b"\xff bad", b"\x7f"]
    pages = [[], plain, plain + [odd[0]], [odd[1]] + plain, plain + [None], odd]
    for contents in pages:
        for cursors in (None, 'c"1', "c\n2", "c\\3"):
            items = []
            for index, content in enumerate(contents):
                cursor = f"Y3Vy{index}" if cursors is None or index != len(contents) // 2 \
                    else cursors
                message = Message(tombstone=True) if content is None else Message(content=content)
                items.append(StreamItem(message, cursor))
            response = entrypoint._json_page(items, "bmV4dA", 500)
            body = json.loads(response.get_data())
            expected = []
            for item, content in zip(items, contents):
                if content is None:
                    expected.append({"id": item.cursor, "content": None, "deleted": True})
                else:
                    expected.append({"id": item.cursor,
                                     "content": content.decode("utf-8", errors="replace")})
            assert body == {"items": expected,
                            "pagination": {"nextCursor": "bmV4dA", "limit": 500}}
            assert all(item.frames is None for item in items)


_CONTENTS = st.one_of(
    st.binary(max_size=40),                                        # any bytes, not UTF-8 too
    st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40).map(
        str.encode),                                               # printable: quotes, `\`
    st.sampled_from([b'{"a": "b\\\\c"}', b"alnum1", b"", b"with space"]))


@given(st.lists(_CONTENTS, min_size=1, max_size=12))
def test_a_page_made_at_once_is_the_per_record_fragments_byte_for_byte(contents):
    """A page of printable-ASCII records (JSON with quotes and backslashes included) made
    for all records at once (`_json_items`) is exactly the per-record fragments joined;
    any other page (UTF-8 beyond ASCII, control characters, bytes that are not UTF-8) is
    left to the fragments; both decode to the items json.dumps would give."""
    import json

    from evgate.core.message import Message
    from evgate.core.stream import StreamItem
    from evgate.entrypoints.http_get import HttpGetEntrypoint, _json_items
    entrypoint = HttpGetEntrypoint.__new__(HttpGetEntrypoint)
    entrypoint.headers_in_payload = entrypoint.metadata_in_payload = False
    items = [StreamItem(Message(content=content), f"Y3Vy{index}")
             for index, content in enumerate(contents)]
    page = _json_items(items, b"[", b"]")
    printable = all(c.isascii() and not c.translate(None, bytes(range(0x20, 0x7f)))
                    for c in contents)
    assert (page is not None) == printable
    if page is not None:
        assert page == b"[" + b",".join(map(entrypoint._json_fragment, items)) + b"]"
    assert json.loads(entrypoint._json_page(items, "bmV4dA", 500).get_data())["items"] == [
        {"id": item.cursor, "content": content.decode("utf-8", errors="replace")}
        for item, content in zip(items, contents)]


def test_a_page_with_a_tombstone_or_an_odd_cursor_is_left_to_the_fragments():
    from evgate.core.message import Message
    from evgate.core.stream import StreamItem
    from evgate.entrypoints.http_get import _json_items
    record = StreamItem(Message(content=b'{"a": 1}'), "Y3Vy")
    assert _json_items([record, StreamItem(Message(tombstone=True), "Y3Vz")]) is None
    for cursor in ('c"1', "c\n2", "c\\3", "\u00e9"):
        assert _json_items([record, StreamItem(Message(content=b"x"), cursor)]) is None

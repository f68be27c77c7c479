"""http-get against real gunicorn and real Kafka: pages with cursors (no gap, no repeat),
JSON/XML/plain by Accept, limits, bad input."""
from __future__ import annotations

import json
import threading
import time

import pytest

from evgate.kafka import cursor as cursors
from tests.support.kafka_broker import create_topic
from tests.support.streams import kafka_endpoint, produce, producer, stream_api, stream_stats
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

GET = {"type": "http-get", "configuration": {"messagesLimitCount": 3,
                                             "messagesLimitDurationMs": 700,
                                             "metadataInPayload": True,
                                             "headersInPayload": True}}


def test_pages_with_cursors(gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/g", [GET], kafka_endpoint(unique_topic))], workers=2)
    status, empty = gw.json("GET", "/g", headers={"Accept": "application/json"})
    assert status == 200 and empty["items"] == []
    cursor = empty["pagination"]["nextCursor"]          # the tail: the next page starts here
    produce(kafka_bootstrap, unique_topic, [f"m{i}" for i in range(7)])
    seen = []
    for expected in (3, 3, 1, 0):
        status, page = gw.json("GET", f"/g?cursor={cursor}&limit=5",
                               headers={"Accept": "*/*"})
        assert status == 200 and len(page["items"]) == expected
        assert page["pagination"]["limit"] == 3
        seen += [item["content"] for item in page["items"]]
        if page["items"]:
            assert page["items"][-1]["metadata"]["offset"] == len(seen) - 1
            assert page["items"][-1]["id"] == page["pagination"]["nextCursor"]
        cursor = page["pagination"]["nextCursor"]
    assert seen == [f"m{i}" for i in range(7)]
    status, _, xml = gw.request("GET", f"/g?cursor={empty['pagination']['nextCursor']}&limit=1",
                                headers={"Accept": "application/xml"})
    assert status == 200 and b"<content>m0</content>" in xml and b"<nextCursor>" in xml
    status, headers, text = gw.request(
        "GET", f"/g?cursor={empty['pagination']['nextCursor']}&limit=1")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"content: m0" in text


@pytest.mark.parametrize("path,headers,status", [
    ("/g", {"Accept": "image/png"}, 400),
    ("/g?limit=0", {"Accept": "application/json"}, 400),
    ("/g?limit=x", {"Accept": "application/json"}, 400),
    ("/g?cursor=%%%", {"Accept": "application/json"}, 400),
])
def test_bad_input(gateway_factory, unique_topic, path, headers, status):
    gw = gateway_factory([stream_api("/g", [GET], kafka_endpoint(unique_topic))], workers=1)
    code, body = gw.json("GET", path, headers=headers)
    assert code == status and body["http_status_code"] == status


PAGES = {"type": "http-get", "configuration": {"messagesLimitCount": 500,
                                               "messagesLimitDurationMs": 3000}}


def test_following_next_cursor_keeps_one_reader_warm(gateway_factory, kafka_bootstrap,
                                                     unique_topic):
    """Each page ends where the shared reader stands: the next page is served by it (no
    consumer per page), and nothing is lost or repeated across pages."""
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    produce(kafka_bootstrap, unique_topic, [f"m{i}" for i in range(4000)], partitions=2)
    gw = gateway_factory([stream_api("/g", [PAGES], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
    cursor = cursors.encode({(unique_topic, 0): -1, (unique_topic, 1): -1})
    seen = []
    for _ in range(8):
        status, page = gw.json("GET", f"/g?cursor={cursor}&limit=500",
                               headers={"Accept": "application/json"})
        assert status == 200 and len(page["items"]) == 500
        seen += [item["content"] for item in page["items"]]
        cursor = page["pagination"]["nextCursor"]
        assert page["items"][-1]["id"] == cursor
    assert sorted(seen, key=lambda v: int(v[1:])) == [f"m{i}" for i in range(4000)]
    stats = wait_for(lambda: stream_stats(gw.log_path.read_text(errors="replace")),
                     "a stream stats line")[-1]
    assert stats["readers_started"] == 1, stats   # 8 pages, one reader


def test_prefer_wait_answers_with_the_first_record(gateway_factory, kafka_bootstrap,
                                                   unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/g", [PAGES], kafka_endpoint(unique_topic))], workers=1)
    status, headers, raw = gw.request("GET", "/g", headers={"Accept": "application/json",
                                                            "Prefer": "wait=1"})
    assert status == 200 and headers["Preference-Applied"] == "wait=1"
    tail = json.loads(raw)["pagination"]["nextCursor"]
    assert json.loads(raw)["items"] == []

    def timed_page(cursor, prefer, value):
        result = {}

        def run():
            began = time.monotonic()
            extra = {"Prefer": prefer} if prefer else {}
            result["answer"] = gw.request("GET", f"/g?cursor={cursor}", headers={
                "Accept": "application/json", **extra})
            result["seconds"] = time.monotonic() - began
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.5)
        produce(kafka_bootstrap, unique_topic, [value])
        thread.join(30)
        return result

    # Gravitee's default: the page waits for messagesLimitCount or messagesLimitDurationMs
    default = timed_page(tail, None, "one")
    status, headers, raw = default["answer"]
    assert status == 200 and "Preference-Applied" not in headers
    page = json.loads(raw)
    assert [i["content"] for i in page["items"]] == ["one"]
    # opt-in long polling: the page answers once it has a record, far sooner
    waited = timed_page(page["pagination"]["nextCursor"], "respond-async, wait=20", "two")
    status, headers, raw = waited["answer"]
    assert status == 200 and headers["Preference-Applied"] == "wait=20"
    assert [i["content"] for i in json.loads(raw)["items"]] == ["two"]
    assert waited["seconds"] < default["seconds"] / 2, (waited, default)


# every shape of value the JSON page writes differently: its own JSON string (alphanumeric, or
# printable ASCII), escaped (quotes, backslashes, control characters, non-ASCII, invalid
# UTF-8), empty, and a tombstone (None)
VALUES = [b"abc123", b"plain text, with: punctuation!", b'{"a": "b\\\\c"}', b"tab\there\nnl\x7f",
          "caf\u00e9 \u2603".encode(), b"bad \xff\xfe utf-8", b"", None, b"x" * 3000]


def _tricky_produce(bootstrap, topic, values):
    p = producer(bootstrap)
    for value in values:
        p.produce(topic, value=value, key=b"k")
    assert p.flush(15) == 0


def test_json_page_fast_path_writes_what_the_message_path_writes(gateway_factory,
                                                                 kafka_bootstrap, unique_topic):
    """The JSON page built from raw records (no Message, no per-item dict) has the same ids,
    contents, tombstones and nextCursor as the page built from messages (headersInPayload
    takes that path), and as an independent decoding of the records."""
    create_topic(kafka_bootstrap, unique_topic)
    _tricky_produce(kafka_bootstrap, unique_topic, VALUES)
    fast = {"type": "http-get", "configuration": {"messagesLimitCount": 50,
                                                  "messagesLimitDurationMs": 500}}
    slow = {"type": "http-get", "configuration": {"messagesLimitCount": 50,
                                                  "messagesLimitDurationMs": 500,
                                                  "headersInPayload": True}}
    gw = gateway_factory([stream_api("/fast", [fast], kafka_endpoint(unique_topic)),
                          stream_api("/slow", [slow], kafka_endpoint(unique_topic))], workers=1)
    start = cursors.encode({(unique_topic, 0): -1})
    pages = {}
    for path in ("/fast", "/slow"):
        status, _, raw = gw.request("GET", f"{path}?cursor={start}&limit=50",
                                    headers={"Accept": "application/json"})
        assert status == 200
        pages[path] = json.loads(raw)       # the fast path's bytes are valid JSON
    fast_items = pages["/fast"]["items"]
    expected = []
    for offset, value in enumerate(VALUES):
        item = {"id": cursors.encode({(unique_topic, 0): offset}),
                "content": None if value is None else value.decode("utf-8", errors="replace")}
        if value is None:
            item["deleted"] = True
        expected.append(item)
    assert fast_items == expected
    assert [{k: v for k, v in i.items() if k != "headers"} for i in pages["/slow"]["items"]] \
        == expected
    assert pages["/fast"]["pagination"] == pages["/slow"]["pagination"] == {
        "nextCursor": expected[-1]["id"], "limit": 50}
    # the next page continues right after: nothing repeated
    status, page = gw.json("GET", f"/fast?cursor={expected[-1]['id']}&limit=50",
                           headers={"Accept": "application/json"})
    assert status == 200 and page["items"] == []
    # pages without the tombstone: printable ones with a JSON record (escaped for the whole
    # page at once), and ones with control characters, non-ASCII and invalid UTF-8 (per-record
    # fragments)
    for after, limit in ((-1, 3), (1, 2), (2, 4)):
        cursor = cursors.encode({(unique_topic, 0): after})
        status, page = gw.json("GET", f"/fast?cursor={cursor}&limit={limit}",
                               headers={"Accept": "application/json"})
        assert status == 200 and page["items"] == expected[after + 1:after + 1 + limit], after

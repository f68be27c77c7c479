"""http-get pages built ahead (EVGATE_STREAM_PAGE_PREFETCH_KIB) against real gunicorn and real
Kafka: a client following nextCursor gets the page built while it read the previous one, the
same bytes as without it; a page built for one client never reaches a request that fails the
plan checks, nor one whose plan filters records."""
from __future__ import annotations

import json
import time

import pytest

from evgate.kafka import cursor as cursors
from evgate.repository import open_repository
from evgate.services.applications import ApplicationService
from evgate.services.principal import LOCAL_OPERATOR
from evgate.services.subscriptions import SubscriptionService
from tests.support.kafka_broker import create_topic
from tests.support.streams import kafka_endpoint, produce, stream_api, stream_stats
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

JSON = {"Accept": "application/json"}
PAGES = {"type": "http-get", "configuration": {"messagesLimitCount": 100,
                                               "messagesLimitDurationMs": 1500}}
STATS = {"EVGATE_STREAM_STATS_INTERVAL_MS": "100"}


def _last_stats(gw, predicate=lambda s: True, what="a stream stats line"):
    def found():
        lines = [s for s in stream_stats(gw.log_path.read_text(errors="replace"))
                 if "pages_built" in s]
        return lines and predicate(lines[-1]) and lines[-1]
    return wait_for(found, what, 10)


def _follow(gw, path, cursor, pages, limit=100):
    seen = []
    raw_pages = []
    for _ in range(pages):
        status, _, raw = gw.request("GET", f"{path}?cursor={cursor}&limit={limit}",
                                    headers=JSON)
        assert status == 200, raw
        page = json.loads(raw)
        raw_pages.append(raw)
        seen += [item["content"] for item in page["items"]]
        cursor = page["pagination"]["nextCursor"]
    return seen, raw_pages


@pytest.mark.parametrize("prefetch_kib", ["8192", "0"])
def test_following_next_cursor_takes_the_pages_built_ahead(gateway_factory, kafka_bootstrap,
                                                           unique_topic, prefetch_kib):
    """Every record once, in order, the same bytes with and without building ahead; with it
    the pages after the first come from the cache, without it nothing is built."""
    create_topic(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic, [f"m{i}" for i in range(1000)])
    gw = gateway_factory([stream_api("/g", [PAGES], kafka_endpoint(unique_topic))], workers=1,
                         env={**STATS, "EVGATE_STREAM_PAGE_PREFETCH_KIB": prefetch_kib})
    start = cursors.encode({(unique_topic, 0): -1})
    seen, raw_pages = _follow(gw, "/g", start, 10)
    assert seen == [f"m{i}" for i in range(1000)]
    for n, raw in enumerate(raw_pages):     # what the page path writes, byte for byte
        items = [{"id": cursors.encode({(unique_topic, 0): i}), "content": f"m{i}"}
                 for i in range(n * 100, n * 100 + 100)]
        pagination = json.dumps({"nextCursor": items[-1]["id"], "limit": 100})
        assert raw == b'{"items":%s,"pagination":%s}' % (
            json.dumps(items, separators=(",", ":")).encode(), pagination.encode())
    if prefetch_kib == "0":
        stats = _last_stats(gw)
        assert stats["pages_built"] == 0 and stats["pages_taken"] == 0, stats
        return
    stats = _last_stats(gw, lambda s: s["pages_taken"] >= 8, "pages taken from the cache")
    assert stats["readers_started"] == 1, stats
    # the page after the last one was built too (full: the backlog has no more than 1000
    # records, so it is not), and nothing unused stays beyond its time
    stats = _last_stats(gw, lambda s: s["pages_cached"] == 0 and s["pages_cached_kib"] == 0,
                        "the cache to be empty again")


def test_no_page_is_built_ahead_at_the_live_end(gateway_factory, kafka_bootstrap,
                                                unique_topic):
    """At the live end the reader does not hold the next page: none is built, so its request
    waits for records as usual and gets the ones produced meanwhile."""
    create_topic(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic, [f"m{i}" for i in range(150)])
    gw = gateway_factory([stream_api("/g", [PAGES], kafka_endpoint(unique_topic))], workers=1,
                         env=STATS)
    start = cursors.encode({(unique_topic, 0): -1})
    status, page = gw.json("GET", f"/g?cursor={start}", headers=JSON)
    assert status == 200 and len(page["items"]) == 100
    time.sleep(0.8)      # the reader holds 50 of the next 100 records: nothing built
    produce(kafka_bootstrap, unique_topic, [f"n{i}" for i in range(50)])
    status, page = gw.json("GET", f"/g?cursor={page['pagination']['nextCursor']}",
                           headers=JSON)
    assert status == 200
    assert [i["content"] for i in page["items"]] == \
        [f"m{i}" for i in range(100, 150)] + [f"n{i}" for i in range(50)]
    stats = _last_stats(gw)
    assert stats["pages_taken"] == 0 and stats["pages_built"] == 0, stats


FILTER = {"policy": "message-filtering",
          "configuration": {"filter": "{#jsonPath(#message.content, '$.keep') == true}"}}


def _two_plan_api(path: str, topic: str) -> dict:
    """An API with two api-key plans: `open` sees every record, `filtered` (a subscribe-phase
    flow of its plan) only those with keep == true."""
    definition = stream_api(path, [PAGES], kafka_endpoint(topic))
    definition["plans"] = [
        {"id": "plan-open", "name": "open", "security": {"type": "api-key"},
         "status": "published"},
        {"id": "plan-filtered", "name": "filtered", "security": {"type": "api-key"},
         "status": "published",
         "flows": [{"name": "only kept", "selectors": [{"type": "channel", "channel": "/"}],
                    "subscribe": [FILTER]}]},
    ]
    return definition


def test_a_page_built_ahead_reaches_no_other_plan_and_no_request_without_a_key(
        gateway_factory, database_url, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic,
            [json.dumps({"keep": i % 2 == 0, "n": i}) for i in range(400)])
    gw = gateway_factory([_two_plan_api("/p", unique_topic)], workers=1, env=STATS)
    repo = open_repository(database_url)
    try:
        subs = SubscriptionService(repo, LOCAL_OPERATOR)
        keys = {}
        for plan in ("plan-open", "plan-filtered"):
            app = ApplicationService(repo, LOCAL_OPERATOR).create({"name": f"app-{plan}"})
            keys[plan] = subs.create(plan_id=plan, application_id=app["id"])["keys"][0]["key"]
    finally:
        repo.dispose()
    start = cursors.encode({(unique_topic, 0): -1})
    open_key = {**JSON, "X-Gravitee-Api-Key": keys["plan-open"]}
    wait_for(lambda: gw.request("GET", f"/p?cursor={start}&limit=1", headers=open_key)[0]
             == 200, "the keys to be accepted", 15)
    status, page = gw.json("GET", f"/p?cursor={start}", headers=open_key)
    assert status == 200 and len(page["items"]) == 100
    second = page["pagination"]["nextCursor"]
    _last_stats(gw, lambda s: s["pages_cached"] >= 1, "the next page to be built")

    # no key, a wrong key (header or query): refused, no page
    for query, headers in (("", JSON), ("", {**JSON, "X-Gravitee-Api-Key": "not-a-key"}),
                           ("&api-key=not-a-key", JSON)):
        status, body = gw.json("GET", f"/p?cursor={second}{query}", headers=headers)
        assert status == 401 and body["http_status_code"] == 401 and "items" not in body
    # the filtered plan asks for the same cursor: its own page, filtered
    filtered = {**JSON, "X-Gravitee-Api-Key": keys["plan-filtered"]}
    status, page = gw.json("GET", f"/p?cursor={second}", headers=filtered)
    assert status == 200 and page["items"]
    contents = [json.loads(item["content"]) for item in page["items"]]
    assert all(c["keep"] for c in contents) and contents[0]["n"] == 100, contents[:3]
    stats = _last_stats(gw)
    assert stats["pages_taken"] == 0 and stats["pages_cached"] >= 1, stats
    # the open plan gets the page built for it: every record after the first page
    status, page = gw.json("GET", f"/p?cursor={second}", headers=open_key)
    assert status == 200
    assert [json.loads(i["content"])["n"] for i in page["items"]] == list(range(100, 200))
    stats = _last_stats(gw, lambda s: s["pages_taken"] >= 1, "the built page to be taken")
    # a client identifier (a consumer group) is never served a page built ahead either
    status, page = gw.json("GET", f"/p?cursor={page['pagination']['nextCursor']}",
                           headers={**open_key, "X-Gravitee-Client-Identifier": "g1"})
    assert status == 200
    assert _last_stats(gw)["pages_taken"] == stats["pages_taken"]

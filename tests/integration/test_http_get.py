"""http-get against real gunicorn and real Kafka: pages with cursors (no gap, no repeat),
JSON/XML/plain by Accept, limits, bad input."""
from __future__ import annotations

import json

import pytest

from tests.support.kafka_broker import create_topic
from tests.support.streams import kafka_endpoint, produce, stream_api

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

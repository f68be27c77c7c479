"""Consumer groups: SSE clients sharing X-Gravitee-Client-Identifier split the records of a
two-partition topic between them; a client without one still gets every record."""
from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka.admin import AdminClient

from tests.support.kafka_broker import create_topic
from tests.support.streams import SseClient, kafka_endpoint, produce, stream_api

pytestmark = pytest.mark.integration


def _wait_members(bootstrap: str, group: str, members: int, timeout: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assigned = [m for m in description.members if m.assignment.topic_partitions]
        if len(assigned) == members and str(description.state).endswith("STABLE"):
            return
        time.sleep(0.2)
    raise AssertionError(f"group {group} did not reach {members} members with partitions")


def test_clients_with_one_identifier_split_the_records(gateway_factory, kafka_bootstrap,
                                                       unique_topic):
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    api = stream_api("/g", [{"type": "sse"}], kafka_endpoint(unique_topic))
    gw = gateway_factory([api], workers=2)
    ident = {"X-Gravitee-Client-Identifier": "team-a"}
    one, two = SseClient(gw.url, "/g", headers=ident), SseClient(gw.url, "/g", headers=ident)
    everyone = SseClient(gw.url, "/g")
    try:
        _wait_members(kafka_bootstrap, f"evgate-{api['id']}-team-a", 2)
        time.sleep(0.5)
        produce(kafka_bootstrap, unique_topic, [f"r{i}" for i in range(20)], partitions=2)
        all_events = everyone.events(20)
        results: dict[str, list] = {}

        def read(name, client):
            results[name] = client.events(10)

        readers = [threading.Thread(target=read, args=(n, c)) for n, c in
                   (("one", one), ("two", two))]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(30)
    finally:
        for client in (one, two, everyone):
            client.close()
    split_one = {e["data"] for e in results["one"]}
    split_two = {e["data"] for e in results["two"]}
    assert split_one and split_two and not split_one & split_two
    assert split_one | split_two == {f"r{i}" for i in range(20)}
    assert sorted(e["data"] for e in all_events) == sorted(f"r{i}" for i in range(20))

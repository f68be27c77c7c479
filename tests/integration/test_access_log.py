"""The access log and the log context of fast-path requests, on real gunicorn workers and a
real broker (issue 11, tenth pass): access lines queued without a LogRecord reach the log with
their transaction, masked, in both formats; a warning logged inside a fast-path request (no
Flask app context) carries that request's api / entrypoint / tx."""
from __future__ import annotations

import base64
import json
import os
import re

import pytest

from tests.integration.test_ingestion import ingestion_api
from tests.support.kafka_broker import consume_all, create_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def _lines(gateway, needle: str) -> list[str]:
    return [line for line in gateway.log_path.read_text(errors="replace").splitlines()
            if needle in line]


def test_access_lines_name_their_transaction_and_mask_secrets(gateway_factory, kafka_bootstrap,
                                                               unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    definition = ingestion_api("/acc/in", unique_topic)
    gateway = gateway_factory([definition], workers=1)
    transactions = []
    for index in range(5):
        status, headers, _ = gateway.request("POST", f"/acc/in?token=s3cr3t-{index}",
                                             f'{{"n": {index}}}')
        assert status == 202
        transactions.append(headers["X-Gravitee-Transaction-Id"])
    for tx in transactions:
        [line] = wait_for(lambda tx=tx: _lines(gateway, f"tx={tx}"), timeout=10,
                          what=f"the access line of {tx}")
        expected = (r'INFO \[\d+\] evgate\.access: 127\.0\.0\.1 "POST /acc/in\?token=\*\*\*\*" '
                    r"202 \d+\.\dms 0B api=" + definition["id"] + " entrypoint=http-post ")
        assert re.search(expected, line), line
    assert "s3cr3t" not in gateway.log_path.read_text()
    assert len(consume_all(kafka_bootstrap, unique_topic, 5)) == 5


def test_json_access_lines(gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    definition = ingestion_api("/acc/json", unique_topic)
    gateway = gateway_factory([definition], workers=1, env={"EVGATE_LOG_FORMAT": "json"})
    status, headers, _ = gateway.request("POST", "/acc/json?api-key=k3y", b"{}")
    assert status == 202
    tx = headers["X-Gravitee-Transaction-Id"]
    [line] = wait_for(lambda: _lines(gateway, tx), timeout=10, what="the JSON access line")
    entry = json.loads(line)
    assert (entry["logger"], entry["level"], entry["status"], entry["path"], entry["api_id"],
            entry["entrypoint"], entry["bytes"]) == \
        ("evgate.access", "info", 202, "/acc/json?api-key=****", definition["id"],
         "http-post", 0)
    assert "k3y" not in gateway.log_path.read_text()


def test_a_warning_inside_a_fast_path_request_carries_its_context(gateway_factory,
                                                                  kafka_bootstrap, unique_topic):
    """The broker refuses a record over the topic's max.message.bytes: http-post logs
    "produce failed" while it handles the request (no Flask app context on this path), then
    answers 413."""
    create_topic(kafka_bootstrap, unique_topic, config={"max.message.bytes": "2000"})
    definition = ingestion_api("/acc/big", unique_topic)
    gateway = gateway_factory([definition], workers=1)
    incompressible = base64.b64encode(os.urandom(30_000))   # lz4 leaves it over 2,000 bytes
    status, headers, body = gateway.request("POST", "/acc/big", incompressible)
    assert status == 413, body
    tx = headers["X-Gravitee-Transaction-Id"]
    warnings = wait_for(lambda: [line for line in _lines(gateway, "produce failed")
                                 if f"tx={tx}]" in line], timeout=10,
                        what="the produce warning with the request's context")
    assert f"[api={definition['id']} entrypoint=http-post tx={tx}]" in warnings[0]
    status, _, _ = gateway.request("POST", "/acc/big", b'{"small": true}')
    assert status == 202   # the worker goes on

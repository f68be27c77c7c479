from types import SimpleNamespace

import gevent
import pytest

from evgate import plugins
from evgate.endpoints.mock import MockEndpoint
from evgate.core.stream import SubscriptionClosed
from evgate.errors import BadRequestError


def _endpoint(**conf):
    return MockEndpoint("default", conf, runtime=None, api_id="api")


def _drain(subscription, timeout=2.0):
    items = []
    with gevent.Timeout(timeout):
        while True:
            try:
                items.extend(subscription.get(timeout=0.5))
            except SubscriptionClosed as closed:
                return items, closed


CTX = SimpleNamespace(transaction_id="tx")


def test_registered():
    assert plugins.load("endpoints", "mock") is MockEndpoint


def test_counted_messages_with_headers_and_metadata():
    endpoint = _endpoint(messageInterval=1, messageContent="hi", messageCount=3,
                         headers={"x-a": "1"}, metadata={"m": "v"})
    items, closed = _drain(endpoint.subscribe(CTX, cursor=None, qos="auto", capacity=10))
    assert [i.cursor for i in items] == ["0", "1", "2"]
    assert [i.message.content for i in items] == [b"hi"] * 3
    assert items[0].message.headers == {"x-a": ["1"]}
    assert items[0].message.metadata == {"m": "v"}
    assert closed.kind == "end"


def test_resume_after_last_id():
    endpoint = _endpoint(messageInterval=1, messageCount=6)
    items, _ = _drain(endpoint.subscribe(CTX, cursor="3", qos="auto", capacity=10))
    assert [i.cursor for i in items] == ["4", "5"]


def test_qos_none_ignores_the_resume_point():
    endpoint = _endpoint(messageInterval=1, messageCount=2)
    items, _ = _drain(endpoint.subscribe(CTX, cursor="0", qos="none", capacity=10))
    assert [i.cursor for i in items] == ["0", "1"]


@pytest.mark.parametrize("bad", ["x", "-1", "1.5", "9" * 30])
def test_malformed_id_is_400(bad):
    with pytest.raises(BadRequestError):
        _endpoint().subscribe(CTX, cursor=bad, qos="auto", capacity=10)


def test_slow_client_is_cut_not_buffered():
    endpoint = _endpoint(messageInterval=1, messageCount=100)
    subscription = endpoint.subscribe(CTX, cursor=None, qos="auto", capacity=5)
    cut = []
    subscription.on_overflow = lambda: cut.append(True)
    gevent.sleep(0.2)   # the client reads nothing
    assert cut == [True]
    assert subscription.closed.kind == "slow"
    assert subscription.buffered == 0


def test_defaults_and_validation():
    endpoint = _endpoint()
    assert endpoint.interval == 1.0 and endpoint.content == "mock message"
    assert endpoint.count is None
    problems = dict(MockEndpoint.validate_configuration(
        {"messageInterval": -1, "messageCount": "x", "headers": 3}, None))
    assert set(problems) == {".messageInterval", ".messageCount", ".headers"}

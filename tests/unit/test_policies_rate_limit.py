"""rate-limit: windows, keys, headers, eviction, validation."""
from __future__ import annotations

import json

import pytest

from evgate.errors import TooManyRequestsError
from evgate.policies.rate_limit import FixedWindowCounter, RateLimitPolicy

from .policy_helpers import context, deploy, step, steps


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_fixed_window_counts_and_resets():
    clock = Clock()
    counter = FixedWindowCounter(2, 10, clock=clock)
    assert counter.hit("k") == (True, 1, 10)
    clock.now += 4
    assert counter.hit("k") == (True, 0, 6)
    assert counter.hit("k")[0] is False
    assert counter.hit("other")[0] is True       # keys are independent
    clock.now += 6                               # the window is over
    assert counter.hit("k") == (True, 1, 10)


def test_memory_is_bounded():
    counter = FixedWindowCounter(1, 60, max_keys=100)
    for index in range(1000):
        counter.hit(f"client-{index}")
    assert len(counter) == 100


def rate_limited(limit=2, **configuration):
    conf = {"rate": {"limit": limit, "periodTime": 10, "periodTimeUnit": "MINUTES"},
            **configuration}
    return deploy([steps("request", step("rate-limit", **conf))])


def statuses(api, contexts):
    out = []
    for ctx in contexts:
        try:
            api.run_request_phase(ctx)
            out.append(200)
        except TooManyRequestsError as exc:
            out.append(exc.status)
    return out


def test_429_after_the_limit_with_retry_after_and_headers():
    api = rate_limited(addHeaders=True)
    contexts = [context(api) for _ in range(3)]
    assert statuses(api, contexts[:2]) == [200, 200]
    assert contexts[1].response_headers["X-Rate-Limit-Remaining"] == "0"
    assert contexts[1].response_headers["X-Rate-Limit-Limit"] == "2"
    with pytest.raises(TooManyRequestsError) as info:
        api.run_request_phase(contexts[2])
    error = info.value
    assert error.status == 429 and error.key == "RATE_LIMIT_TOO_MANY_REQUESTS"
    assert 1 <= int(error.headers["Retry-After"]) <= 600
    assert "10 requests" not in error.message and "2 requests per 10 minutes" in error.message
    assert json.dumps(error.body())


def test_no_headers_unless_asked():
    api = rate_limited()
    ctx = context(api)
    api.run_request_phase(ctx)
    assert ctx.response_headers == {}


def test_keyless_clients_are_counted_by_address():
    api = rate_limited(limit=1)
    first = context(api)
    other = context(api, remote_addr="10.9.9.9")
    assert statuses(api, [first, other, context(api)]) == [200, 200, 429]


def test_subscriptions_are_counted_apart():
    api = rate_limited(limit=1)
    a = [context(api, subscription={"id": "a"}) for _ in range(2)]
    b = [context(api, subscription={"id": "b"})]
    assert statuses(api, a + b) == [200, 429, 200]


def test_key_template_and_use_key_only():
    api = deploy([steps("request", step("rate-limit", rate={
        "limit": 1, "periodTime": 1, "periodTimeUnit": "HOURS",
        "key": "{#request.headers['X-Tenant'][0]}", "useKeyOnly": True}))])
    t1 = [context(api, headers={"X-Tenant": "t1"}, subscription={"id": str(i)})
          for i in range(2)]
    t2 = [context(api, headers={"X-Tenant": "t2"})]
    assert statuses(api, t1 + t2) == [200, 429, 200]


@pytest.mark.parametrize("configuration,path", [
    ({}, ".rate"),
    ({"rate": {"limit": -1}}, ".rate.limit"),
    ({"rate": {"limit": "10"}}, ".rate.limit"),
    ({"rate": {"limit": 1, "periodTime": 0}}, ".rate.periodTime"),
    ({"rate": {"limit": 1, "periodTimeUnit": "WEEKS"}}, ".rate.periodTimeUnit"),
    ({"rate": {"limit": 1, "key": "{#a ==}"}}, ".rate.key"),
    ({"rate": {"limit": 1}, "key": "{)}"}, ".key"),
    ({"rate": {"limit": 1}, "addHeaders": "yes"}, ".addHeaders"),
])
def test_validation(configuration, path):
    assert path in dict(RateLimitPolicy.validate_configuration(configuration, None))


def test_only_in_the_request_phase():
    from evgate.definition import parse_definition
    from evgate.errors import DefinitionError
    from .policy_helpers import definition
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition([steps("publish", step("rate-limit", rate={"limit": 1}))]))
    assert info.value.problems[0]["path"] == "$.flows[0].publish[0].policy"

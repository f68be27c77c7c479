"""rate-limit: windows shared by forked workers, keys, headers, eviction, validation."""
from __future__ import annotations

import fcntl
import json
import os
import signal

import pytest

from evgate.core import shared_windows
from evgate.core.shared_windows import SharedWindows
from evgate.errors import TooManyRequestsError
from evgate.policies.rate_limit import RateLimitPolicy

from .policy_helpers import context, deploy, step, steps


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def fresh_table(monkeypatch):
    """Each test its own node table (the process-wide one would carry counts between
    tests that deploy the same definition)."""
    table = SharedWindows(slots=256)
    monkeypatch.setattr(shared_windows, "_node_table", table)
    return table


def test_fixed_window_counts_and_resets():
    clock = Clock()
    table = SharedWindows(slots=64, clock=clock)
    assert table.hit("k", 2, 10) == (True, 1, 10)
    clock.now += 4
    assert table.hit("k", 2, 10) == (True, 0, 6)
    assert table.hit("k", 2, 10) == (False, 0, 6)
    assert table.hit("other", 2, 10)[0] is True       # keys are independent
    clock.now += 6                                    # the window is over
    assert table.hit("k", 2, 10) == (True, 1, 10)


def test_memory_is_bounded_and_the_soonest_ending_window_is_given_up():
    clock = Clock()
    table = SharedWindows(slots=4, probe=4, clock=clock)
    for index in range(4):                  # four live windows fill the table
        assert table.hit(f"client-{index}", 1, 10 + index)[0] is True
        assert table.hit(f"client-{index}", 1, 10 + index)[0] is False
    assert table.hit("newcomer", 1, 60)[0] is True      # takes client-0's place (ends first)
    assert table.hit("client-0", 1, 10)[0] is True      # ...so client-0 starts afresh
    assert table.hit("client-3", 1, 13)[0] is False     # the others keep their counts
    clock.now += 20                                     # every window over: all reusable
    assert all(table.hit(f"late-{i}", 1, 5)[0] for i in range(4))


def test_workers_forked_from_the_master_share_the_counts():
    """The node table is made before the fork: the counts of every process add up."""
    table = SharedWindows(slots=64)
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:                                    # a worker: 5 hits, then exit
            allowed = sum(table.hit("client", 10, 600)[0] for _ in range(5))
            os._exit(0 if allowed <= 5 else 1)
        children.append(pid)
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    # 15 hits counted by the children against a limit of 10: the parent is refused
    assert table.hit("client", 10, 600) == (False, 0, pytest.approx(600, abs=60))


def test_a_worker_killed_holding_the_lock_does_not_wedge_the_others():
    table = SharedWindows(slots=64)
    pid = os.fork()
    if pid == 0:
        fcntl.lockf(table._fd, fcntl.LOCK_EX)        # dies in the middle of an update
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    assert table.hit("client", 1, 60)[0] is True     # the kernel dropped the dead one's lock


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


def test_two_workers_deploying_the_same_api_share_its_counters():
    """Each worker builds its own policy objects from the same definition: they must agree
    on the counter, or N workers let a client through N times the limit."""
    worker_a, worker_b = rate_limited(limit=2), rate_limited(limit=2)
    assert statuses(worker_a, [context(worker_a)]) == [200]
    assert statuses(worker_b, [context(worker_b), context(worker_b)]) == [200, 429]
    assert statuses(worker_a, [context(worker_a)]) == [429]


def test_steps_and_redeploys_count_apart():
    twice = deploy([steps("request", step("rate-limit", rate={"limit": 1, "periodTime": 1}),
                          step("rate-limit", rate={"limit": 1, "periodTime": 1}))])
    first, second = twice.flows.flows[0].phases["request"]
    assert first.policy.place == "$.flows[0].request[0]"
    assert second.policy.place == "$.flows[0].request[1]"
    assert statuses(twice, [context(twice)]) == [200]     # each step counts its own hit
    assert statuses(twice, [context(twice)]) == [429]
    # a changed definition (here the limit) is a new deployment: fresh counters
    assert statuses(rate_limited(limit=3), [context(rate_limited(limit=3))]) == [200]
    old = rate_limited(limit=1)
    assert statuses(old, [context(old), context(old)]) == [200, 429]
    renamed = deploy([steps("request", step("rate-limit", rate={
        "limit": 1, "periodTime": 10, "periodTimeUnit": "MINUTES"}), name="other name")])
    assert statuses(renamed, [context(renamed)]) == [200]


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

"""The readiness decision (evgate/observability/health.py) without servers: the repository
check, draining, the result cache and the single check in flight. The Kafka probe itself is
exercised against real brokers in tests/integration/test_health.py; here it is replaced."""
from __future__ import annotations

import gevent
import pytest

from evgate.config import Config
from evgate.observability.health import Readiness


class FakeRepository:
    def __init__(self) -> None:
        self.up = True
        self.pings = 0

    def ping(self) -> bool:
        self.pings += 1
        gevent.sleep(0.01)   # a real ping waits for the database: let others run meanwhile
        return self.up


class FakeRuntime:
    def __init__(self, repo, cache_ms: int = 0) -> None:
        self.config = Config.from_env({}, health_cache_ms=cache_ms)
        self.repo = repo
        self.draining = False
        self.apis: dict = {}


@pytest.fixture
def kafka_state(monkeypatch):
    state = {"healthy": True}
    monkeypatch.setattr(Readiness, "_kafka", lambda self: dict(state))
    return state


def test_repository_down_then_back(kafka_state):
    repo = FakeRepository()
    readiness = Readiness(FakeRuntime(repo))
    assert readiness.check()["status"] == "UP"

    repo.up = False
    report = readiness.check()
    assert report["status"] == "DOWN"
    assert report["checks"]["repository"] == {"healthy": False,
                                              "message": "the repository does not answer"}
    assert report["checks"]["kafka"]["healthy"] is True
    assert report["checks"]["gateway"]["healthy"] is True

    repo.up = True
    report = readiness.check()
    assert report["status"] == "UP" and report["checks"]["repository"]["healthy"] is True


def test_kafka_down_alone_makes_it_down(kafka_state):
    readiness = Readiness(FakeRuntime(FakeRepository()))
    kafka_state.update(healthy=False, message="127.0.0.1:1: refused")
    report = readiness.check()
    assert report["status"] == "DOWN"
    assert report["checks"]["repository"]["healthy"] is True


def test_no_repository_is_ready(kafka_state):
    report = Readiness(FakeRuntime(None)).check()
    assert report["status"] == "UP"
    assert "static" in report["checks"]["repository"]["message"]


def test_draining_is_down_at_once_even_with_a_cached_up(kafka_state):
    repo = FakeRepository()
    runtime = FakeRuntime(repo, cache_ms=60_000)
    readiness = Readiness(runtime)
    assert readiness.check()["status"] == "UP"
    runtime.draining = True
    report = readiness.check()
    assert report["status"] == "DOWN"
    assert report["checks"] == {"gateway": {"healthy": False,
                                            "message": "draining: the worker is stopping"}}


def test_result_is_cached_then_refreshed(kafka_state):
    repo = FakeRepository()
    runtime = FakeRuntime(repo, cache_ms=60_000)
    readiness = Readiness(runtime)
    readiness.check()
    repo.up = False
    assert readiness.check()["status"] == "UP"      # within the cache period
    assert repo.pings == 1
    readiness.cache_s = 0
    assert readiness.check()["status"] == "DOWN"
    assert repo.pings == 2


def test_concurrent_probes_share_one_check(kafka_state):
    repo = FakeRepository()
    readiness = Readiness(FakeRuntime(repo))
    reports = [g.get() for g in [gevent.spawn(readiness.check) for _ in range(5)]]
    assert repo.pings == 1
    assert all(report is reports[0] for report in reports)


def test_a_failing_check_fails_its_waiters_and_the_next_check_runs_again(kafka_state):
    class Broken(FakeRepository):
        def ping(self) -> bool:
            self.pings += 1
            gevent.sleep(0.01)
            if self.pings == 1:
                raise RuntimeError("boom")
            return True

    repo = Broken()
    readiness = Readiness(FakeRuntime(repo))
    first, second = gevent.spawn(readiness.check), gevent.spawn(readiness.check)
    gevent.joinall([first, second])
    assert isinstance(first.exception, RuntimeError)
    assert isinstance(second.exception, RuntimeError)
    assert readiness.check()["status"] == "UP"

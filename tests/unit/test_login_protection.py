"""Management logins: same KDF for unknown users, failed-login throttles, KDF off the hub."""
from __future__ import annotations

import hashlib
import threading

import gevent
import pytest

from evgate.config import Config
from evgate.core.shared_windows import SharedWindows
from evgate.security import passwords
from evgate.security.login import (FailureThrottle, KdfPool, LoginBusy, LoginGuard,
                                   LoginThrottled, address_key)
from evgate.services.users import UserService

from .management_fixtures import ADMIN, B, basic, client, fast_hashing, management  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kdf_calls(monkeypatch):
    """Every hashlib.scrypt call evgate makes: its parameters (password length excluded)."""
    calls: list[dict] = []
    real = hashlib.scrypt

    def recording(password, *, salt, n, r, p, maxmem=0, dklen=64):
        calls.append({"salt_len": len(salt), "n": n, "r": r, "p": p, "maxmem": maxmem,
                      "dklen": dklen})
        return real(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

    monkeypatch.setattr(passwords.hashlib, "scrypt", recording)
    return calls


def guard(clock=None, **overrides) -> LoginGuard:
    values = dict(per_address=3, per_user=5, window=60.0, max_keys=100, threads=2,
                  max_pending=16)
    values.update(overrides)
    return LoginGuard(clock=clock or Clock(), **values)


@pytest.fixture
def users(repo, fast_hashing):
    clock = Clock()
    service = UserService(repo, guard=guard(clock))
    service.set_password("alice", "alice-pw", ["USER"])
    service.set_password("bob", "bob-pw", ["USER"])
    service.clock = clock
    return service


# -- same work for unknown users ----------------------------------------------------------------
def test_wrong_password_for_unknown_and_known_user_runs_the_same_kdf(users, kdf_calls):
    assert users.authenticate("alice", "wrong", client="10.0.0.1") is None
    known = list(kdf_calls)
    kdf_calls.clear()
    assert users.authenticate("nobody-by-that-name", "wrong", client="10.0.0.2") is None
    unknown = list(kdf_calls)
    assert len(known) == 1 and unknown == known
    assert known[0]["n"] == passwords.N and known[0]["p"] == passwords.P


def test_dummy_hash_has_production_parameters_and_matches_nothing():
    scheme, n, r, p, salt, digest = passwords.dummy_hash().split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", passwords.N, passwords.R, passwords.P)
    stored = passwords.hash_password("x", n=2 ** 10, p=1).split("$")
    assert len(salt) == len(stored[4]) and len(digest) == len(stored[5])
    cheap = f"scrypt${2 ** 10}$8$1${salt}${digest}"
    assert not passwords.verify_password("", cheap)
    assert not passwords.verify_password("anything", cheap)


def test_unknown_user_counts_against_the_limits_like_a_known_one(users):
    for _ in range(3):
        assert users.authenticate("ghost", "x", client="10.0.0.9") is None
    with pytest.raises(LoginThrottled):
        users.authenticate("ghost", "x", client="10.0.0.9")


# -- throttling ---------------------------------------------------------------------------------
def test_address_past_the_limit_is_throttled_without_running_the_kdf(users, kdf_calls):
    for _ in range(3):
        assert users.authenticate("alice", "guess", client="10.0.0.1") is None
    kdf_calls.clear()
    with pytest.raises(LoginThrottled) as refused:
        users.authenticate("alice", "alice-pw", client="10.0.0.1")  # even the right one
    assert kdf_calls == []
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == "60"
    assert refused.value.details == {"retryAfterSeconds": 60}


def test_another_address_and_its_success_do_not_reset_the_throttled_one(users):
    for _ in range(3):
        users.authenticate("alice", "guess", client="10.0.0.1")
    assert users.authenticate("alice", "alice-pw", client="10.0.0.2")["username"] == "alice"
    with pytest.raises(LoginThrottled):
        users.authenticate("bob", "bob-pw", client="10.0.0.1")


def test_a_success_does_not_reset_the_own_address_count(users):
    """Else an attacker with any account clears his count between guesses."""
    for _ in range(2):
        users.authenticate("alice", "guess", client="10.0.0.1")
    users.authenticate("bob", "bob-pw", client="10.0.0.1")
    users.authenticate("alice", "guess", client="10.0.0.1")
    with pytest.raises(LoginThrottled):
        users.authenticate("alice", "guess", client="10.0.0.1")


def test_throttle_ends_when_failures_age_out_of_the_window(users):
    for _ in range(3):
        users.authenticate("alice", "guess", client="10.0.0.1")
    users.clock.now += 30
    with pytest.raises(LoginThrottled) as refused:
        users.authenticate("alice", "alice-pw", client="10.0.0.1")
    assert refused.value.headers["Retry-After"] == "30"
    users.clock.now += 30.5
    assert users.authenticate("alice", "alice-pw", client="10.0.0.1") is not None


def test_user_name_is_throttled_across_addresses_but_not_other_users(users, kdf_calls):
    for i in range(5):  # per_user=5, each address below its own limit of 3
        assert users.authenticate("alice", "guess", client=f"10.0.1.{i}") is None
    kdf_calls.clear()
    with pytest.raises(LoginThrottled) as refused:
        users.authenticate("alice", "alice-pw", client="10.0.2.1")
    assert "user name" in refused.value.message and kdf_calls == []
    assert users.authenticate("bob", "bob-pw", client="10.0.2.1") is not None


def test_recently_verified_credentials_pass_a_user_throttle(users):
    """The lock-out tradeoff: a client already logged in keeps working during an attack."""
    assert users.authenticate("alice", "alice-pw", client="10.0.3.1") is not None
    for i in range(5):
        users.authenticate("alice", "guess", client=f"10.0.1.{i}")
    assert users.authenticate("alice", "alice-pw", client="10.0.3.1") is not None
    with pytest.raises(LoginThrottled):
        users.authenticate("alice", "guess", client="10.0.3.1")


def test_a_throttled_user_name_cannot_be_probed_from_one_address(users):
    """The cache answers the right, recently used password without the KDF: refusals by the
    per-user limit count against the address, so one address gets no free guesses."""
    assert users.authenticate("alice", "alice-pw", client="10.0.3.1") is not None  # cached
    for i in range(5):
        users.authenticate("alice", "guess", client=f"10.0.1.{i}")
    for _ in range(3):
        with pytest.raises(LoginThrottled):
            users.authenticate("alice", "guess", client="10.0.4.1")
    with pytest.raises(LoginThrottled) as refused:
        users.authenticate("alice", "alice-pw", client="10.0.4.1")
    assert "address" in refused.value.message


def test_the_workers_of_a_node_count_failures_together(repo, fast_hashing, kdf_calls):
    """Each gunicorn worker has its own guard; with the node's table they add up, so N
    workers do not give an attacker N times the guesses."""
    table = SharedWindows(slots=256)
    workers = [UserService(repo, guard=guard(shared=table)) for _ in range(3)]
    workers[0].set_password("alice", "alice-pw", ["USER"])
    for worker in workers:                      # one guess on each worker: 3 = the limit
        assert worker.authenticate("alice", "guess", client="10.0.0.7") is None
    for worker in workers:
        with pytest.raises(LoginThrottled):     # every worker refuses the address now
            worker.authenticate("alice", "alice-pw", client="10.0.0.7")
    # another address is not affected
    assert workers[1].authenticate("alice", "alice-pw", client="10.0.0.8")["username"] == "alice"
    # without the table (the old per-worker counting) the same guesses pass unnoticed
    alone = [UserService(repo, guard=guard()) for _ in range(3)]
    for worker in alone:
        assert worker.authenticate("alice", "guess", client="10.0.0.9") is None
    assert alone[2].guard.by_address.retry_after(address_key("10.0.0.9")) == 0


def test_only_a_server_master_makes_the_table_workers_share(monkeypatch):
    from evgate.core import shared_windows
    monkeypatch.setattr(shared_windows, "_node_table", None)
    monkeypatch.setattr(shared_windows, "_from_master", False)
    assert LoginGuard.from_config(Config.from_env({})).by_address._shared is None
    made = shared_windows.create_node_table(slots=64)
    assert LoginGuard.from_config(Config.from_env({})).by_address._shared is made


def test_failure_throttle_memory_is_bounded():
    clock = Clock()
    throttle = FailureThrottle(limit=3, window=60, max_keys=50, clock=clock)
    for i in range(1000):
        throttle.failed(f"k{i}")
    assert len(throttle) == 50
    for _ in range(100):
        throttle.failed("hot")
    assert len(throttle._failures["hot"]) == 3
    assert throttle.retry_after("k0") == 0  # evicted: forgotten, not blocked forever
    assert throttle.retry_after("hot") == 60


def test_ipv6_clients_count_per_64_and_ipv4_mapped_as_ipv4():
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert address_key(None) == "-"


def test_guard_from_config_uses_the_settings():
    config = Config.from_env({"EVGATE_MANAGEMENT_LOGIN_FAILURES_PER_ADDRESS": "4",
                              "EVGATE_MANAGEMENT_LOGIN_WINDOW_MS": "5000",
                              "EVGATE_MANAGEMENT_PASSWORD_MAX_PENDING": "7"})
    built = LoginGuard.from_config(config)
    assert (built.by_address.limit, built.by_address.window) == (4, 5.0)
    assert built.by_user.limit == Config({}).management_login_failures_per_user
    assert built.by_user.limit > built.by_address.limit
    assert built.pool.max_pending == 7


# -- successful-credential cache ----------------------------------------------------------------
def test_cache_needs_the_exact_password_and_a_password_change_invalidates_it(users, kdf_calls):
    assert users.authenticate("alice", "alice-pw", client="10.0.0.1") is not None
    kdf_calls.clear()
    assert users.authenticate("alice", "alice-pw", client="10.0.0.1") is not None
    assert kdf_calls == []  # served from the cache
    assert users.authenticate("alice", "alice-pw ", client="10.0.0.1") is None
    assert len(kdf_calls) == 1
    users.set_password("alice", "new-pw")
    assert users.authenticate("alice", "alice-pw", client="10.0.0.4") is None
    assert users.authenticate("alice", "new-pw", client="10.0.0.4") is not None


def test_cache_is_bounded_and_expires(monkeypatch):
    cache = passwords.VerifiedCache(ttl=60, size=3)
    for i in range(10):
        cache.remember(f"u{i}", "pw", "h")
    assert len(cache._entries) == 3
    assert cache.hit("u9", "pw", "h") and not cache.hit("u0", "pw", "h")
    now = passwords.time.monotonic()
    monkeypatch.setattr(passwords.time, "monotonic", lambda: now + 61)
    assert not cache.hit("u9", "pw", "h")


# -- KDF off the hub, bounded -------------------------------------------------------------------
def test_kdf_pool_keeps_the_hub_serving_while_scrypt_runs():
    """Production-cost scrypt on the pool's native threads: the hub keeps running greenlets
    (hashlib.scrypt releases the GIL). Inline, the ticker would not advance at all."""
    pool = KdfPool(threads=2, max_pending=8, use_gevent=True)
    stored = passwords.hash_password("pw")  # production N, R, P
    ticks = []

    def ticker():
        while True:
            ticks.append(1)
            gevent.sleep(0.005)

    tick = gevent.spawn(ticker)
    gevent.sleep(0)
    try:
        before = len(ticks)
        checks = [gevent.spawn(pool.run, passwords.verify_password, "pw", stored)
                  for _ in range(2)]
        gevent.joinall(checks, raise_error=True)
        during = len(ticks) - before
    finally:
        tick.kill()
    assert [c.value for c in checks] == [True, True]
    assert during >= 5, f"the hub ticked {during} times while two hashes ran"
    assert pool.pending == 0


def test_kdf_pool_refuses_past_max_pending_at_once():
    pool = KdfPool(threads=1, max_pending=2, use_gevent=True)
    native = threading.Event()  # not monkey-patched here: a native event

    def slow() -> str:
        native.wait(10)
        return "done"

    waiting = [gevent.spawn(pool.run, slow) for _ in range(2)]
    gevent.sleep(0.05)
    assert pool.pending == 2
    with pytest.raises(LoginBusy) as refused:
        pool.run(slow)
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
    native.set()
    gevent.joinall(waiting, timeout=10, raise_error=True)
    assert [g.value for g in waiting] == ["done", "done"] and pool.pending == 0


# -- HTTP answers -------------------------------------------------------------------------------
def test_401_and_429_bodies_are_json(client):
    for _ in range(10):  # the default per-address limit
        response = client.get(B + "/v4/apis", headers=basic("admin", "wrong"))
        assert response.status_code == 401
        assert response.get_json()["technicalCode"] == "auth.invalid"
    response = client.get(B + "/v4/apis", headers=basic("admin", "wrong"))
    assert response.status_code == 429
    assert response.headers["Retry-After"].isdigit()
    body = response.get_json()
    assert body["http_status"] == 429 and body["technicalCode"] == "auth.throttled"
    assert body["parameters"]["retryAfterSeconds"] == int(response.headers["Retry-After"])
    assert "WWW-Authenticate" not in response.headers
    # the admin's own, already verified credentials were not among them: refused as well
    assert client.get(B + "/v4/apis", headers=ADMIN).status_code == 429

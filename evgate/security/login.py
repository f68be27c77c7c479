"""What keeps HTTP Basic logins from being turned against the management API.

- `KdfPool`: scrypt costs ~0.3 s of CPU by design. Run on a gevent worker's hub it stalls every
  other request of that worker, so it runs on a small pool of native threads of its own
  (`gevent.threadpool.ThreadPool`, not the hub's threadpool, which also resolves DNS);
  hashlib.scrypt releases the GIL, so the hub keeps serving while hashes compute. At most
  `max_pending` verifications run or wait at once; one more is refused at once (503 +
  Retry-After) instead of queueing without end.
- `FailureThrottle`: failed logins counted in a sliding window per key, for a bounded number of
  keys (least recently failed forgotten first), and in the node's shared table
  (evgate/core/shared_windows.py: every worker of the server adds to the same count, in a
  fixed window) so that N workers do not allow N times the limit. `LoginGuard` keeps one per client address and
  one per user name; past either limit, 429 + Retry-After, and the KDF does not run.

Successes reset no counter: if they did, an attacker holding any valid account could clear
his address's count between guesses. Failures simply age out of the window.

The per-user limit is the tradeoff between guessing one user's password from many addresses
and locking that user out: an attacker with enough addresses keeps the user's new logins
refused while the attack lasts (never longer than a window after it), so the limit is set
higher than the per-address one, and a client whose exact credentials were verified within the
cache TTL (`VerifiedCache`) is served without the KDF and despite the per-user limit (not
despite the per-address one: a throttled address must not probe the cache for free, and a
refusal by the per-user limit counts against the address).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable, TypeVar

from ..core.shared_windows import SharedWindows, master_table
from ..errors import GatewayError, TooManyRequestsError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LoginThrottled(TooManyRequestsError):
    """Too many failed logins from this address or for this user name (429)."""

    key = "auth.throttled"

    def __init__(self, message: str, retry_after: float):
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, headers={"Retry-After": str(seconds)},
                         details={"retryAfterSeconds": seconds})


class LoginBusy(GatewayError):
    """Too many password verifications already running or waiting (503)."""

    status = 503
    retriable = True
    key = "auth.busy"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message, headers={"Retry-After": str(retry_after)},
                         details={"retryAfterSeconds": retry_after})


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("threading"))


class KdfPool:
    """Runs password hashing on `threads` native threads, at most `max_pending` at once.

    Under gevent (a gunicorn gevent worker: threading is monkey-patched) the calling greenlet
    waits on a `gevent.threadpool.ThreadPool` of this pool's own; elsewhere (CLI, plain
    threads) the caller is a native thread already and the KDF runs inline. The bound applies
    in both cases."""

    def __init__(self, threads: int, max_pending: int, use_gevent: bool | None = None):
        self.threads, self.max_pending = threads, max_pending
        self._use_gevent = use_gevent
        self._pool: Any = None
        self._pool_pid: int | None = None
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    def _gevent_pool(self) -> Any:
        use = _gevent_patched() if self._use_gevent is None else self._use_gevent
        if not use:
            return None
        if self._pool is None or self._pool_pid != os.getpid():
            from gevent.threadpool import ThreadPool
            self._pool, self._pool_pid = ThreadPool(self.threads), os.getpid()
        return self._pool

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._pending >= self.max_pending:
                raise LoginBusy(f"{self._pending} password verifications are already "
                                "running or waiting; retry later")
            self._pending += 1
        try:
            pool = self._gevent_pool()
            if pool is None:
                return fn(*args)
            return pool.spawn(fn, *args).get()
        finally:
            with self._lock:
                self._pending -= 1


class FailureThrottle:
    """At most `limit` failures per key in the last `window` seconds (sliding window log),
    in this process; and, with `shared` (the node's table, evgate/core/shared_windows.py),
    at most `limit` per fixed window of `window` seconds counted by all the node's workers
    together, so that N workers do not allow N times the limit.

    Memory: at most `max_keys` keys of at most `limit` timestamps each, plus the node's
    bounded table."""

    def __init__(self, limit: int, window: float, max_keys: int = 10000,
                 clock: Callable[[], float] = time.monotonic, *,
                 shared: "SharedWindows | None" = None, scope: str = ""):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._shared = shared
        self._scope = f"login-failures|{scope}|{limit}|{window}|"

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        node = 0.0
        if self._shared is not None:
            count, reset_in = self._shared.add(self._scope + key, self.window, 0)
            if count >= self.limit:
                node = reset_in
        return max(node, self._local_retry_after(key))

    def _local_retry_after(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            times = self._failures.get(key)
            if not times:
                return 0.0
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._failures[key]
                return 0.0
            if len(times) < self.limit:
                return 0.0
            return times[0] + self.window - now

    def failed(self, key: str) -> bool:
        """Count one failure; True when it makes `key` reach the limit."""
        reached = False
        if self._shared is not None:
            reached = self._shared.add(self._scope + key, self.window)[0] == self.limit
        return self._local_failed(key) or reached

    def _local_failed(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.limit)
            else:
                self._failures.move_to_end(key)
            while times and times[0] <= now - self.window:
                times.popleft()
            times.append(now)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
            return len(times) == self.limit

    def __len__(self) -> int:
        return len(self._failures)


def address_key(address: str | None) -> str:
    """Client address as counted: an IPv6 client is its /64 (one host owns a whole /64)."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def user_key(username: str) -> str:
    """A fixed-size key: user names come from the client and may be long."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


class LoginGuard:
    """The per-address and per-user throttles and the KDF pool of one management app."""

    def __init__(self, *, per_address: int, per_user: int, window: float, max_keys: int,
                 threads: int, max_pending: int, clock: Callable[[], float] = time.monotonic,
                 shared: "SharedWindows | None" = None):
        self.by_address = FailureThrottle(per_address, window, max_keys, clock,
                                          shared=shared, scope="address")
        self.by_user = FailureThrottle(per_user, window, max_keys, clock, shared=shared,
                                       scope="user")
        self.pool = KdfPool(threads, max_pending)

    @classmethod
    def from_config(cls, config: Any = None) -> "LoginGuard":
        """From the settings (evgate/config.py); their defaults when `config` is None."""
        if config is None:
            from ..config import Config
            config = Config({})
        return cls(per_address=config.management_login_failures_per_address,
                   per_user=config.management_login_failures_per_user,
                   window=config.management_login_window_ms / 1000.0,
                   max_keys=config.management_login_tracked_keys,
                   threads=config.management_password_threads,
                   max_pending=config.management_password_max_pending,
                   shared=master_table())

    def check_address(self, client: str | None) -> None:
        """LoginThrottled when this address is past its limit. Checked before anything else,
        the credential cache included: a throttled address cannot probe it for free."""
        wait = self.by_address.retry_after(address_key(client))
        if wait > 0:
            raise LoginThrottled("too many failed logins from this address; retry later", wait)

    def check_user(self, client: str | None, username: str) -> None:
        """LoginThrottled when this user name is past its limit. The refusal counts as a
        failure of the address, so one address cannot keep guessing (and probing the cache)
        while the user name is throttled."""
        wait = self.by_user.retry_after(user_key(username))
        if wait > 0:
            self._address_failed(client)
            raise LoginThrottled("too many failed logins for this user name; retry later",
                                 wait)

    def _address_failed(self, client: str | None) -> None:
        if self.by_address.failed(address_key(client)):
            logger.warning("management logins from %s refused (up to %.0f s): %d failed logins",
                           client, self.by_address.window, self.by_address.limit)

    def failed(self, client: str | None, username: str) -> None:
        self._address_failed(client)
        if self.by_user.failed(user_key(username)):
            logger.warning("management logins for user %r refused (up to %.0f s): %d failed "
                           "logins", username[:64], self.by_user.window, self.by_user.limit)

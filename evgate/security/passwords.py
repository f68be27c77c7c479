"""Password hashing for management users: stdlib scrypt with a per-user random salt.

Why scrypt from `hashlib` rather than argon2-cffi: it is memory-hard (the property that makes
GPU guessing expensive), it ships with Python's OpenSSL so evgate needs no extra native wheel,
and its parameters live in the stored string, so they can be raised later without breaking
old hashes. Format: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`.

HTTP Basic sends the password with every request, and one scrypt verification costs tens of
milliseconds by design; `VerifiedCache` remembers recent successful checks (keyed by an HMAC
of the password under a per-process random key, never the password itself) so that a busy
client does not pay that cost on each call. `dummy_hash()` is what an unknown user name is
checked against, so that it costs the same scrypt as a known one (no user-name enumeration by
timing). Where the KDF runs (native threads, off the gevent hub) is `evgate/security/login.py`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict

# One of OWASP's equivalent scrypt minimums (Password Storage Cheat Sheet): N=2^15, r=8, p=3
# (32 MiB per hash, ~0.3 s here); N=2^17/p=1 would cost 128 MiB per concurrent login.
N, R, P = 2 ** 15, 8, 3
_MAXMEM = 64 * 1024 * 1024
DKLEN = 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int | None = None, r: int | None = None,
                  p: int | None = None) -> str:
    if not password:
        raise ValueError("a password must not be empty")
    n, r, p = n or N, r or R, p or P
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                            maxmem=_MAXMEM, dklen=DKLEN)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check; False for any malformed stored value."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                                n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM,
                                dklen=len(base64.b64decode(expected)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


_DUMMY_SALT = secrets.token_bytes(16)
_DUMMY_DIGEST = secrets.token_bytes(DKLEN)


def dummy_hash() -> str:
    """A stored-hash string that matches no password, with the parameters, salt length and
    digest length `hash_password` uses now: verifying against it costs what verifying a real
    user's hash costs. Read at call time, so tests that lower N stay consistent."""
    return f"scrypt${N}${R}${P}${_b64(_DUMMY_SALT)}${_b64(_DUMMY_DIGEST)}"


def generate_password() -> str:
    return secrets.token_urlsafe(15)


class VerifiedCache:
    """Recently verified (user, password, stored hash) triples, for `ttl` seconds.

    Only successes enter it, keyed by an HMAC (per-process key) of the triple: nothing here
    reveals a password, and a guess can hit only if it is the right password. The stored hash
    is part of the key, so a password change (by any process: the hash is read from the
    repository on each request) misses at once. Bounded: least recently verified entries go
    first."""

    def __init__(self, ttl: float = 60.0, size: int = 256):
        self.ttl, self.size = ttl, size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def _fingerprint(self, username: str, password: str, stored: str) -> bytes:
        text = "\0".join((username, password, stored)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def hit(self, username: str, password: str, stored: str) -> bool:
        """True when this exact triple was verified less than `ttl` seconds ago (no KDF)."""
        fingerprint = self._fingerprint(username, password, stored)
        now = time.monotonic()
        with self._lock:
            expires = self._entries.get(fingerprint)
            if expires is None:
                return False
            if expires <= now:
                del self._entries[fingerprint]
                return False
            return True

    def remember(self, username: str, password: str, stored: str) -> None:
        """Record a successful verification (the caller ran the KDF)."""
        fingerprint = self._fingerprint(username, password, stored)
        with self._lock:
            self._entries[fingerprint] = time.monotonic() + self.ttl
            self._entries.move_to_end(fingerprint)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def check(self, username: str, password: str, stored: str) -> bool:
        """verify_password, answered from the cache when this exact triple passed recently
        (inline: for start-up and the CLI, where no request waits on the hub)."""
        if self.hit(username, password, stored):
            return True
        if not verify_password(password, stored):
            return False
        self.remember(username, password, stored)
        return True

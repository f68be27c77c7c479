"""Password hashing for management users: stdlib scrypt with a per-user random salt.

Why scrypt from `hashlib` rather than argon2-cffi: it is memory-hard (the property that makes
GPU guessing expensive), it ships with Python's OpenSSL so evgate needs no extra native wheel,
and its parameters live in the stored string, so they can be raised later without breaking
old hashes. Format: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`.

HTTP Basic sends the password with every request, and one scrypt verification costs tens of
milliseconds by design; `VerifiedCache` remembers recent successful checks (keyed by an HMAC
of the password under a per-process random key, never the password itself) so that a busy
client does not pay that cost on each call.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time

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


def generate_password() -> str:
    return secrets.token_urlsafe(15)


class VerifiedCache:
    """Recently verified (user, password, stored hash) triples, for `ttl` seconds."""

    def __init__(self, ttl: float = 60.0, size: int = 256):
        self.ttl, self.size = ttl, size
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _fingerprint(self, username: str, password: str, stored: str) -> bytes:
        text = "\0".join((username, password, stored)).encode("utf-8")
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def check(self, username: str, password: str, stored: str) -> bool:
        """verify_password, answered from the cache when this exact triple passed recently.
        A changed password hash (set-password) changes the fingerprint, so it re-verifies."""
        fingerprint = self._fingerprint(username, password, stored)
        now = time.monotonic()
        with self._lock:
            expires = self._entries.get(fingerprint)
            if expires is not None and expires > now:
                return True
        if not verify_password(password, stored):
            return False
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries = {k: v for k, v in self._entries.items() if v > now}
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[fingerprint] = now + self.ttl
        return True

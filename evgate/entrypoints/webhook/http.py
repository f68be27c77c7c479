"""The webhook HTTP client: a pooled `requests.Session` per subscription whose connections
go only to addresses the SSRF policy vetted, plus the subscription's auth.

Pinning: `PinnedHTTPConnection._new_conn` resolves the host itself, refuses the connection
when any answer is refused (`ssrf.resolve_allowed`) and connects the socket to the vetted
address. The connection's `host` stays the name, so the Host header, TLS SNI and certificate
verification are for the name, as with any client. Proxies from the environment are ignored
(`trust_env = False`): a proxy would connect on our behalf to an address we did not vet.
Redirects are not followed (a 3xx is an answer, not a hop to an unvetted target): the
session never even looks for a redirect target (`requests` would otherwise read the whole 3xx
body and raise TooManyRedirects with `max_redirects = 0`, even with `allow_redirects=False`).

Works under gevent's monkey patching (gunicorn gevent workers): sockets and getaddrinfo are
cooperative there.
"""
from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import _set_socket_options

from .ssrf import CallbackUrlRefused, SsrfPolicy, resolve_allowed

logger = logging.getLogger(__name__)

USER_AGENT = "evgate-webhooks/1"


class _PinnedMixin:
    """Resolve, vet, then connect to the vetted address (never re-resolve after the check)."""

    ssrf_policy: SsrfPolicy = SsrfPolicy()

    def _new_conn(self) -> socket.socket:  # type: ignore[override]
        host, port = self._dns_host, self.port  # type: ignore[attr-defined]
        addresses = resolve_allowed(host, port, self.ssrf_policy)  # CallbackUrlRefused escapes
        last_error: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                _set_socket_options(sock, self.socket_options)  # type: ignore[attr-defined]
                if self.timeout is not None:  # type: ignore[attr-defined]
                    sock.settimeout(self.timeout)  # type: ignore[attr-defined]
                sock.connect((str(address), port))
                return sock
            except socket.timeout as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"Connection to {host} ({address}) timed out "
                                                f"(connect timeout={self.timeout})") from exc  # type: ignore[attr-defined]
            except OSError as exc:
                sock.close()
                last_error = exc
            except BaseException:  # the delivery deadline (gevent.Timeout) mid-connect
                sock.close()
                raise
        raise NewConnectionError(self, f"Failed to establish a new connection to {host}: "  # type: ignore[arg-type]
                                       f"{last_error}")


def _adapter_for(policy: SsrfPolicy, pool_size: int) -> HTTPAdapter:
    http_conn = type("PinnedHTTPConnection", (_PinnedMixin, HTTPConnection),
                     {"ssrf_policy": policy})
    https_conn = type("PinnedHTTPSConnection", (_PinnedMixin, HTTPSConnection),
                      {"ssrf_policy": policy})
    http_pool = type("PinnedHTTPConnectionPool", (HTTPConnectionPool,),
                     {"ConnectionCls": http_conn})
    https_pool = type("PinnedHTTPSConnectionPool", (HTTPSConnectionPool,),
                      {"ConnectionCls": https_conn})

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
            self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)

    return PinnedAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0,
                         pool_block=False)


class _NoRedirectSession(requests.Session):
    """A Session for which no answer is a redirect: a 3xx comes back as the response."""

    def get_redirect_target(self, resp: requests.Response) -> None:  # type: ignore[override]
        return None


def pinned_session(policy: SsrfPolicy, pool_size: int = 5) -> requests.Session:
    """A Session that only reaches addresses `policy` allows; no proxies, no redirects."""
    session = _NoRedirectSession()
    session.trust_env = False
    session.max_redirects = 0
    adapter = _adapter_for(policy, pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class AuthError(Exception):
    """The auth configuration cannot be used (permanent) or a token fetch failed."""

    def __init__(self, message: str, *, retriable: bool):
        super().__init__(message)
        self.retriable = retriable


@dataclass
class _Token:
    value: str
    expires_at: float


class WebhookAuth:
    """Authorization for one subscription: basic, token (Bearer) or oauth2 client credentials
    (token cached until shortly before it expires; dropped when the callback answers 401)."""

    REFRESH_MARGIN_S = 30.0

    def __init__(self, auth: Mapping[str, Any] | None):
        auth = dict(auth or {})
        self.type = str(auth.get("type") or "none").lower()
        self._header: str | None = None
        self._oauth2: dict[str, Any] = {}
        self._token: _Token | None = None
        self._lock = threading.Lock()  # gevent-patched in workers: a cooperative lock
        if self.type == "none":
            return
        if self.type == "basic":
            basic = auth.get("basic") or {}
            username, password = basic.get("username"), basic.get("password")
            if not isinstance(username, str) or not isinstance(password, str):
                raise AuthError("auth.basic needs username and password", retriable=False)
            raw = f"{username}:{password}".encode("utf-8")
            self._header = "Basic " + base64.b64encode(raw).decode("ascii")
        elif self.type == "token":
            value = (auth.get("token") or {}).get("value")
            if not isinstance(value, str) or not value:
                raise AuthError("auth.token needs a value", retriable=False)
            self._header = "Bearer " + value
        elif self.type == "oauth2":
            oauth2 = dict(auth.get("oauth2") or {})
            for name in ("endpoint", "clientId", "clientSecret"):
                if not isinstance(oauth2.get(name), str) or not oauth2.get(name):
                    raise AuthError(f"auth.oauth2 needs {name}", retriable=False)
            self._oauth2 = oauth2
        else:
            raise AuthError(f"unknown auth type {self.type!r} (basic, token, oauth2)",
                            retriable=False)

    def __repr__(self) -> str:  # never the secret
        return f"<WebhookAuth {self.type}>"

    def header(self, session: requests.Session, timeout: tuple[float, float]) -> str | None:
        """The Authorization header value (fetching an oauth2 token when needed)."""
        if self.type != "oauth2":
            return self._header
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.expires_at:
                token = self._token = self._fetch(session, timeout)
        return "Bearer " + token.value

    def invalidate(self) -> None:
        """The callback refused the token (401): fetch a new one next time."""
        self._token = None

    def _fetch(self, session: requests.Session, timeout: tuple[float, float]) -> _Token:
        conf = self._oauth2
        data = {"grant_type": "client_credentials"}
        scopes = conf.get("scopes")
        if isinstance(scopes, list) and scopes:
            data["scope"] = " ".join(str(s) for s in scopes)
        elif isinstance(scopes, str) and scopes:
            data["scope"] = scopes
        try:
            # client_secret_basic: the method RFC 6749 s2.3.1 says every server supports.
            resp = session.post(conf["endpoint"], data=data, timeout=timeout,
                                auth=(conf["clientId"], conf["clientSecret"]),
                                allow_redirects=False, headers={"Accept": "application/json"})
        except CallbackUrlRefused:
            raise
        except requests.RequestException as exc:
            raise AuthError(f"oauth2 token endpoint unreachable: {type(exc).__name__}",
                            retriable=True) from None
        if resp.status_code != 200:
            raise AuthError(f"oauth2 token endpoint answered {resp.status_code}",
                            retriable=resp.status_code >= 500 or resp.status_code == 429)
        try:
            body = resp.json()
            value = body["access_token"]
            expires_in = float(body.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError):
            raise AuthError("oauth2 token endpoint answered without access_token",
                            retriable=True) from None
        lifetime = max(1.0, expires_in - self.REFRESH_MARGIN_S)
        return _Token(str(value), time.monotonic() + lifetime)

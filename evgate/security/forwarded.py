"""The client's address behind reverse proxies the operator trusts (EVGATE_TRUSTED_PROXIES).

Without the setting, the client address is the TCP peer and `X-Forwarded-For` is never
believed: anyone can send that header. Behind a load balancer every request comes from the
proxy's address, so per-address limits (failed logins, the rate-limit policy keyed on the
address), the access log and `#request.remoteAddress` would all see one client. With the
setting, a request whose TCP peer is inside one of the trusted networks gets `REMOTE_ADDR`
rewritten to the right-most `X-Forwarded-For` address that is not itself a trusted proxy
(each proxy appends the peer it saw, so everything left of the first untrusted hop may be
forged by the client). A malformed entry stops the walk there: the last trusted address
stands. The TCP peer is kept as `evgate.proxy_addr` for the logs.

werkzeug's ProxyFix trusts a fixed number of hops from any peer; a gateway that may also be
reached directly must decide by the peer's address instead, hence this small middleware.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import Any, Callable, Iterable, Sequence

logger = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, networks: Sequence[_Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: str | None,
                   networks: Sequence[_Network]) -> str:
    """The address a request came from: `peer` unless `peer` is a trusted proxy, then the
    right-most X-Forwarded-For hop that is not (see the module docstring)."""
    if not forwarded_for or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip().strip("[]")
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage (or an obfuscated identifier): believe nothing left of it
        client = hop
        if not _trusted(hop, networks):
            break
    return client


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR is the client's address behind trusted proxies."""

    def __init__(self, app: Callable[..., Any], cidrs: Iterable[str]):
        self.app = app
        self.networks = parse_networks(cidrs)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR") or ""
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            client = client_address(peer, forwarded, self.networks)
            if client != peer:
                environ["evgate.proxy_addr"] = peer
                environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)


def behind_trusted_proxies(app: Any, cidrs: Sequence[str]) -> None:
    """Wrap a Flask app's WSGI callable when the operator named trusted proxies (no cost
    otherwise)."""
    if cidrs:
        app.wsgi_app = TrustedProxies(app.wsgi_app, cidrs)
        logger.info("X-Forwarded-For is believed from %s", ", ".join(cidrs))

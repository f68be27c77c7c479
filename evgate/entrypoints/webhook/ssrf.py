"""Which callback targets the gateway may POST to (server-side request forgery guard).

A subscriber chooses the callback URL, so without a guard anyone who may subscribe could make
the gateway call its own network: the cloud metadata service (credentials), the admin ports of
internal services, the management API on loopback. The policy:

- the URL must be `http` or `https`, with a host, without user:password (credentials belong
  in the subscription's `auth`);
- every address the host resolves to must be *public*: loopback, private (RFC 1918, ULA),
  link-local, CGNAT (100.64/10), multicast, unspecified, reserved, broadcast, IPv4-mapped/NAT64
  forms of those, and cloud metadata addresses are refused;
- `EVGATE_WEBHOOK_ALLOW_PRIVATE=loopback` allows loopback, `=private` allows loopback and the
  private/link-local/CGNAT ranges (cloud metadata addresses stay refused);
  `EVGATE_WEBHOOK_ALLOWED_NETWORKS` (CIDRs) allows exactly those networks, metadata included if
  named there. The tests allow `127.0.0.1/32` only.

The check runs twice: when a subscription is created or updated (`check_callback_url`, a 400
for the subscriber; a name that does not resolve then is refused too) and at every new
connection (`resolve_allowed`, used by `evgate.entrypoints.webhook.http`, which then connects to the
vetted address itself), so a DNS answer that changes after the subscription (DNS rebinding)
cannot reach a refused address.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

from ...errors import BadRequestError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance metadata services: refused even when private targets are allowed.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",   # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    "169.254.170.2",     # AWS ECS task metadata
    "169.254.169.123",   # AWS time sync
    "169.254.169.253",   # AWS VPC DNS
    "100.100.100.200",   # Alibaba Cloud
    "192.0.0.192",       # Oracle Cloud
    "fd00:ec2::254",     # AWS IMDS over IPv6
    "fd00:ec2::23",      # AWS NTP over IPv6
))

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_LEVELS = ("none", "loopback", "private")


class CallbackUrlRefused(BadRequestError):
    """The callback URL is not acceptable (400 at subscription; FAILURE at delivery)."""

    key = "subscription.callbackUrl.invalid"


@dataclass(frozen=True)
class SsrfPolicy:
    """What may be called: `allow_private` level plus explicitly allowed networks."""

    allow_private: str = "none"
    allowed_networks: tuple[IPNetwork, ...] = ()

    def __post_init__(self) -> None:
        if self.allow_private not in _ALLOW_LEVELS:
            raise ValueError(f"allow_private must be one of {', '.join(_ALLOW_LEVELS)}")

    @classmethod
    def from_config(cls, config: Any) -> "SsrfPolicy":
        return cls(allow_private=config.webhook_allow_private,
                   allowed_networks=parse_networks(config.webhook_allowed_networks))

    @property
    def allows_non_public(self) -> bool:
        return self.allow_private != "none" or bool(self.allowed_networks)

    def describe(self) -> str:
        nets = ",".join(str(n) for n in self.allowed_networks) or "-"
        return f"allow_private={self.allow_private} allowed_networks={nets}"

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be called, or None when it may."""
        if any(address in net for net in self.allowed_networks
               if net.version == address.version):
            return None
        embedded = _embedded_ipv4(address)
        if embedded is not None:  # judge ::ffff:10.0.0.1 and 64:ff9b::a00:1 as 10.0.0.1
            return self.refusal(embedded)
        category = classify(address)
        if category == "public":
            return None
        if category == "loopback" and self.allow_private in ("loopback", "private"):
            return None
        if category in ("private", "link-local", "cgnat") and self.allow_private == "private":
            return None
        return f"{address} is a {category} address"


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> str:
    """A category name: public, loopback, private, link-local, cgnat, metadata, multicast,
    unspecified or reserved."""
    if address in METADATA_ADDRESSES:
        return "metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address.version == 4 and address in _CGNAT:
        return "cgnat"
    if address.is_reserved or (address.version == 4 and address == ipaddress.IPv4Address(
            "255.255.255.255")):
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return "public"


#: Percent-encoded white space and control characters (%00-%1F, %7F, %20): a URL that hides
#: them is a header/request-splitting attempt, never a real receiver.
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-f]|7f|20)", re.IGNORECASE)


def split_callback_url(url: Any, name: str = "callbackUrl") -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL shape; CallbackUrlRefused otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise CallbackUrlRefused(f"{name} must be a non-empty http(s) URL")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") or c == "\\"
           for c in url) or _ENCODED_CONTROL.search(url):
        raise CallbackUrlRefused(f"{name} must not contain white space, control "
                                 "characters or backslashes (encoded or not)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlRefused(f"{name} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise CallbackUrlRefused(f"{name} must use http or https")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlRefused(f"{name} must not carry user:password; use the "
                                 "subscription's auth")
    host = parts.hostname
    if not host:
        raise CallbackUrlRefused(f"{name} has no host")
    if "%" in host:
        raise CallbackUrlRefused(f"{name} host must not be percent-encoded or carry an "
                                 "IPv6 zone")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _literal(host: str) -> IPAddress | None:
    """The address a literal host names, including the legacy IPv4 spellings resolvers
    accept (2130706433, 0x7f000001, 0177.0.0.1, 127.1), so they are judged as addresses."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (gevent makes getaddrinfo cooperative in workers)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for *_ignored, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


def resolve_allowed(host: str, port: int, policy: SsrfPolicy) -> list[IPAddress]:
    """The addresses to connect to. Refused when *any* answer is refused: a name that mixes
    public and internal answers is an attack, not a load balancer."""
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise ConnectionError(f"{host} resolves to no address")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise CallbackUrlRefused(
                f"callback host {host} refused by the gateway's SSRF policy: {reason}")
    return addresses


def check_callback_url(url: Any, policy: SsrfPolicy, *, resolve_names: bool = True,
                       name: str = "callbackUrl") -> None:
    """Raise CallbackUrlRefused (a 400 BadRequestError) when `url` may not be a callback.

    For the subscription service. A host name that does not resolve *now* is refused too: a
    subscriber learns of a typo at once instead of from a FAILURE later (a transient DNS
    failure means trying again). Every connection checks again anyway.
    """
    _scheme, host, port = split_callback_url(url, name)
    literal = _literal(host)
    if literal is not None:
        reason = policy.refusal(literal)
        if reason is not None:
            raise CallbackUrlRefused(f"{name} refused by the gateway's SSRF policy: "
                                     f"{reason}")
        return
    if host.rstrip(".").lower() in ("localhost", "localhost.localdomain") or \
            host.rstrip(".").lower().endswith(".localhost"):
        reason = policy.refusal(ipaddress.ip_address("127.0.0.1"))
        if reason is not None:
            raise CallbackUrlRefused(f"{name} refused by the gateway's SSRF policy: "
                                     f"{host} is a loopback name")
    if not resolve_names:
        return
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise CallbackUrlRefused(f"{name} host {host} does not resolve")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            # the subscriber learns the category, not which internal address a name has
            logger.info("callback host %s refused at subscription: %s", host, reason)
            raise CallbackUrlRefused(f"{name} refused by the gateway's SSRF policy: "
                                     f"{host} resolves to a "
                                     f"{classify(_embedded_ipv4(address) or address)} address")

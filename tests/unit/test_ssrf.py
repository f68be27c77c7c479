"""SSRF policy: the table of refused and allowed targets, at subscription and at connect."""
import socket

import pytest

from evgate.entrypoints.webhook import ssrf
from evgate.entrypoints.webhook.http import pinned_session
from evgate.entrypoints.webhook.ssrf import (CallbackUrlRefused, SsrfPolicy, check_callback_url,
                                  parse_networks)
from tests.support.receiver import Receiver

STRICT = SsrfPolicy()
LOOPBACK = SsrfPolicy(allow_private="loopback")
PRIVATE = SsrfPolicy(allow_private="private")
TESTS = SsrfPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))

REFUSED_BY_DEFAULT = [
    "http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://[::1]/", "http://localhost/",
    "http://api.localhost/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/",
    "http://[fd12:3456::1]/", "http://169.254.1.1/", "http://[fe80::1]/",
    "http://100.64.0.1/", "http://224.0.0.1/", "http://[ff02::1]/", "http://0.0.0.0/",
    "http://[::]/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
    "http://100.100.100.200/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://255.255.255.255/", "http://240.0.0.1/",
    "http://2130706433/", "http://0x7f000001/",
]


@pytest.mark.parametrize("url", REFUSED_BY_DEFAULT)
def test_refused_by_default(url):
    with pytest.raises(CallbackUrlRefused):
        check_callback_url(url, STRICT)


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "http://8.8.8.8:8080/x",
                                 "https://[2606:4700:4700::1111]/"])
def test_public_literals_allowed(url):
    check_callback_url(url, STRICT)


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/", "file:///etc/passwd",
                                 "gopher://1.2.3.4/", "http:///nohost", "",
                                 "http://user:pw@93.184.216.34/", "http://93.184.216.34:99999/",
                                 "http://93.184.216.34/a b", None, 42, "javascript:alert(1)"])
def test_bad_shapes_refused(url):
    with pytest.raises(CallbackUrlRefused):
        check_callback_url(url, PRIVATE)


@pytest.mark.parametrize("policy,url,allowed", [
    (LOOPBACK, "http://127.0.0.1:9/", True),
    (LOOPBACK, "http://[::1]/", True),
    (LOOPBACK, "http://10.0.0.1/", False),
    (PRIVATE, "http://10.0.0.1/", True),
    (PRIVATE, "http://169.254.1.1/", True),
    (PRIVATE, "http://100.64.0.1/", True),
    (PRIVATE, "http://169.254.169.254/", False),   # metadata stays refused
    (PRIVATE, "http://[fd00:ec2::254]/", False),
    (PRIVATE, "http://224.0.0.1/", False),
    (TESTS, "http://127.0.0.1:8080/", True),
    (TESTS, "http://127.0.0.2/", False),
    (TESTS, "http://[::1]/", False),
    (SsrfPolicy(allowed_networks=parse_networks(["169.254.169.254/32"])),
     "http://169.254.169.254/", True),             # only when named explicitly
])
def test_allowances(policy, url, allowed):
    if allowed:
        check_callback_url(url, policy)
    else:
        with pytest.raises(CallbackUrlRefused):
            check_callback_url(url, policy)


def _fake_dns(monkeypatch, answers):
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            value = answers[host]
            address = value.pop(0) if isinstance(value, list) and len(value) > 1 else (
                value[0] if isinstance(value, list) else value)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fake)


def test_names_resolving_to_internal_addresses_are_refused(monkeypatch):
    _fake_dns(monkeypatch, {"internal.example": "10.1.2.3"})
    with pytest.raises(CallbackUrlRefused):
        check_callback_url("https://internal.example/hook", STRICT)


def test_unresolvable_names_are_refused_at_subscription(monkeypatch):
    def fail(*_args, **_kwargs):
        raise socket.gaierror("no such name")
    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fail)
    with pytest.raises(CallbackUrlRefused, match="does not resolve"):
        check_callback_url("https://nowhere.invalid/hook", STRICT)


def test_a_refused_name_does_not_reveal_its_internal_address(monkeypatch):
    _fake_dns(monkeypatch, {"db.internal.example": "10.9.8.7"})
    with pytest.raises(CallbackUrlRefused) as info:
        check_callback_url("https://db.internal.example/hook", STRICT)
    assert "private" in info.value.message and "10.9.8.7" not in info.value.message


def test_dns_rebinding_is_refused_at_connect(monkeypatch):
    """Public when subscribing, loopback when delivering: the connection is refused."""
    _fake_dns(monkeypatch, {"rebind.example": ["93.184.216.34", "127.0.0.1"]})
    check_callback_url("http://rebind.example/hook", STRICT)
    session = pinned_session(STRICT)
    with pytest.raises(CallbackUrlRefused):
        session.post("http://rebind.example/hook", data=b"x", timeout=2)


def test_connects_to_the_vetted_address_keeping_the_host_name(monkeypatch):
    with Receiver() as rx:
        _fake_dns(monkeypatch, {"receiver.example": "127.0.0.1"})
        session = pinned_session(TESTS)
        resp = session.post(f"http://receiver.example:{rx.port}/hook", data=b"hello", timeout=5)
        assert resp.status_code == 200
        assert rx.requests[0].header("host") == f"receiver.example:{rx.port}"
        assert rx.requests[0].body == b"hello"
        with pytest.raises(CallbackUrlRefused):  # the same receiver, not allowed by policy
            pinned_session(STRICT).post(rx.url, data=b"x", timeout=5)


def test_no_redirects_and_no_environment_proxies(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with Receiver() as rx, Receiver() as elsewhere:
        rx.script(("redirect", 302, elsewhere.url), ("redirect", 307, elsewhere.url))
        session = pinned_session(TESTS)
        assert session.post(rx.url, data=b"x", timeout=5).status_code == 302
        # as the delivery loop calls it: the 3xx is the answer, no TooManyRedirects
        answer = session.post(rx.url, data=b"x", timeout=5, allow_redirects=False, stream=True)
        assert answer.status_code == 307 and answer.headers["Location"] == elsewhere.url
        assert len(rx.requests) == 2 and elsewhere.requests == []

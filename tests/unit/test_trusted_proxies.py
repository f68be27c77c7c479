"""EVGATE_TRUSTED_PROXIES: X-Forwarded-For is believed only from the operator's proxies, and
then only up to the first hop that is not one of them (an attacker who reaches evgate
directly, or prepends forged hops, cannot pick the address the limits count)."""
from __future__ import annotations

import pytest

from evgate.config import Config, ConfigError
from evgate.security.forwarded import client_address, parse_networks

from .management_fixtures import B, basic, fast_hashing  # noqa: F401

PROXIES = parse_networks(["10.0.0.0/24", "fd00::/64"])


@pytest.mark.parametrize("peer, forwarded, expected", [
    # a client reaching evgate directly: its header is ignored
    ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
    # through one trusted proxy
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
    # forged hops left of the real client are not believed
    ("10.0.0.5", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
    # through two trusted proxies
    ("10.0.0.5", "198.51.100.1, 10.0.0.9", "198.51.100.1"),
    # every hop trusted: the left-most one
    ("10.0.0.5", "10.0.0.7, 10.0.0.9", "10.0.0.7"),
    # garbage stops the walk: the last trusted hop stands
    ("10.0.0.5", "198.51.100.1, not-an-ip", "10.0.0.5"),
    ("10.0.0.5", "198.51.100.1, unknown, 10.0.0.9", "10.0.0.9"),
    # IPv6 proxies and clients, bracketed or not, and v4-mapped peers
    ("fd00::1", "2001:db8::5", "2001:db8::5"),
    ("fd00::1", "[2001:db8::5]", "2001:db8::5"),
    ("::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"),
    # no header
    ("10.0.0.5", None, "10.0.0.5"),
    ("10.0.0.5", "", "10.0.0.5"),
])
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, PROXIES) == expected


def test_a_bad_cidr_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigError, match="EVGATE_TRUSTED_PROXIES.*10.0.0.300"):
        Config.from_env({"EVGATE_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.300/32"})


def _management(repo, database_url, proxies):
    from evgate.management.app import create_management_app
    config = Config.from_env({}, database_url=database_url, admin_password="admin-secret",
                             management_login_failures_per_address=3,
                             trusted_proxies=proxies)
    app = create_management_app(config, repository=repo)
    app.testing = True
    return app.test_client()


def _login(client, peer: str, forwarded: str | None, password: str = "wrong") -> int:
    headers = dict(basic("admin", password))
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    return client.get(B + "/v4/apis", headers=headers,
                      environ_base={"REMOTE_ADDR": peer}).status_code


def test_without_the_setting_a_forged_header_does_not_escape_the_address_limit(
        repo, database_url, fast_hashing):  # noqa: F811
    client = _management(repo, database_url, ())
    statuses = [_login(client, "203.0.113.7", f"198.51.100.{i}") for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
        repo, database_url, fast_hashing):  # noqa: F811
    client = _management(repo, database_url, ("10.0.0.0/24",))
    # one client guessing through the proxy is throttled ...
    assert [_login(client, "10.0.0.5", "198.51.100.1") for _ in range(4)] == \
        [401, 401, 401, 429]
    # ... and forging hops left of itself does not help it
    assert _login(client, "10.0.0.5", "1.1.1.1, 198.51.100.1") == 429
    # the other clients behind the same proxy are not locked out with it
    assert _login(client, "10.0.0.5", "198.51.100.2", password="admin-secret") == 200
    # a direct client claiming to be a trusted proxy's client is counted as itself
    assert [_login(client, "203.0.113.9", "198.51.100.3") for _ in range(4)] == \
        [401, 401, 401, 429]
    assert _login(client, "10.0.0.5", "198.51.100.3", password="admin-secret") == 200


def test_the_gateway_logs_and_evaluates_the_forwarded_client(database_url, caplog):
    """On the gateway too: the access log's `client` is the address behind a trusted proxy,
    and a direct client's forged header is not believed."""
    import logging
    import uuid

    from evgate.app import create_app
    from evgate.gateway.runtime import GatewayRuntime, Snapshot
    config = Config.from_env({}, database_url=database_url, trusted_proxies=("10.0.0.0/24",))
    runtime = GatewayRuntime(config, None)
    api = {"id": str(uuid.uuid4()), "name": "p", "definitionVersion": "4.0.0", "type": "async",
           "listeners": [{"type": "http", "paths": [{"path": "/in"}],
                          "entrypoints": [{"type": "http-post"}]}],
           "endpointGroups": [{"name": "default", "type": "mock", "endpoints": [
               {"name": "default", "type": "mock",
                "configuration": {"messageInterval": 1, "messageCount": 1}}]}]}
    plan = {"id": "p0", "name": "Keyless", "security": {"type": "key-less"},
            "status": "published"}
    runtime.apply(Snapshot(1, [{"id": api["id"], "deployed_definition": api}],
                           {api["id"]: [plan]}))
    try:
        client = create_app(config, runtime=runtime, start=False).test_client()
        with caplog.at_level(logging.INFO, logger="evgate.access"):
            for peer in ("10.0.0.5", "203.0.113.9"):
                response = client.post("/in", data=b"x", environ_base={"REMOTE_ADDR": peer},
                                       headers={"X-Forwarded-For": "198.51.100.1"})
                assert response.status_code == 202, response.data
                response.close()  # the access line is written when the body is done
        clients = [r.client for r in caplog.records if getattr(r, "client", None)]
        assert clients == ["198.51.100.1", "203.0.113.9"]
    finally:
        runtime.stop(timeout=1)

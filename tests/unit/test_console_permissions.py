"""The console's pages read as another user: every GET route of the console blueprint (new
routes are covered too), filled with ALICE's ids, opened by BOB signed in to the console:
neither alice's API key, nor her callback URL, nor the jwt plan's secret appears; alice herself
sees her callback (filtering, not blanket masking). The world is test_permissions.py's."""
from __future__ import annotations

import re

from .management_fixtures import fast_hashing, management  # noqa: F401
from .test_permissions import (ALICE_CALLBACK, ALICE_KEY, JWT_SECRET, database_url,  # noqa: F401
                               template, world)


def _console_client(management, username: str, password: str):
    client = management.test_client()
    page = client.get("/console/login").get_data(True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/console/login", data={"username": username, "password": password,
                                                    "csrf_token": token})
    assert response.status_code == 303
    return client


def test_no_console_page_leaks_another_applications_key_callback_or_jwt_secret(world,
                                                                                management):
    ids = world.ids()
    fills = {"api_id": [ids["api"], ids["push_api"]], "app_id": [ids["app"]]}
    bob = _console_client(management, "bob", "pw-bob")
    alice = _console_client(management, "alice", "pw-alice")
    checked = 0
    for rule in management.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint == "console.static" \
                or "GET" not in rule.methods:
            continue
        urls = [""]
        for part in rule.rule.split("/")[1:]:
            name = part[1:-1].split(":")[-1] if part.startswith("<") else None
            urls = [u + "/" + value for u in urls for value in (fills[name] if name else [part])]
        for url in urls:
            for client, other in ((bob, True), (alice, False)):
                response = client.get(url)
                text = response.get_data(True)
                assert response.status_code != 500, url
                assert JWT_SECRET not in text, url
                if other:
                    assert ALICE_KEY not in text and ALICE_CALLBACK not in text, url
            checked += 1
    assert checked >= 8
    assert bob.get(f"/console/applications/{ids['app']}").status_code == 404
    own = alice.get("/console/subscriptions").get_data(True)
    assert ALICE_CALLBACK in own

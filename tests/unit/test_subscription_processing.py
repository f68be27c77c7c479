"""Accept / reject with a reason (publisherMessage, processedAt, processedBy) over the
management API, the console and the service; and the webhook "last success" recorder
(evgate/gateway/last_delivery.py) on a real repository."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from evgate.errors import BadRequestError, ForbiddenError, NotFoundError
from evgate.gateway.last_delivery import LastDeliveryRecorder
from evgate.services.principal import Principal
from evgate.services.subscriptions import MAX_REASON, SubscriptionService

from .management_fixtures import (ADMIN, B, Api, basic, client, fast_hashing,  # noqa: F401
                                  management)
from .test_console import C, sign_in

P = "/portal/environments/DEFAULT"
ALICE = basic("alice", "alice-pw")
BOB = basic("bob", "bob-pw")


@pytest.fixture
def world(client):
    """A manual api-key plan; alice and bob each have a PENDING subscription to it."""
    api = Api(client)
    api.call("PUT", B + "/users/alice", 200, json={"password": "alice-pw", "roles": ["USER"]})
    api.call("PUT", B + "/users/bob", 200, json={"password": "bob-pw", "roles": ["USER"]})
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key", validation="manual")
    subs = {}
    for name, creds in (("alice", ALICE), ("bob", BOB)):
        app = api.call("POST", P + "/applications", 201, headers=creds, json={"name": name})
        subs[name] = api.call("POST", P + "/subscriptions", 201, headers=creds,
                              json={"application": app["id"], "plan": plan["id"]})
        assert subs[name]["status"] == "PENDING"
        assert subs[name]["publisherMessage"] is None and subs[name]["processedAt"] is None
    return api, api_id, subs


def _url(api_id: str, sub: dict, action: str = "") -> str:
    return f"{B}/v4/apis/{api_id}/subscriptions/{sub['id']}" + (f"/{action}" if action else "")


def _recent(stamp: str, seconds: float = 60) -> bool:
    return abs(datetime.fromisoformat(stamp) - datetime.now(timezone.utc)) \
        < timedelta(seconds=seconds)


def test_process_keeps_the_reason_who_and_when(world):
    api, api_id, subs = world
    rejected = api.call("POST", _url(api_id, subs["alice"], "_process"), 200,
                        json={"accepted": False, "reason": "  not a partner yet  "})
    assert rejected["status"] == "REJECTED"
    assert rejected["publisherMessage"] == "not a partner yet"
    assert rejected["processedBy"] == {"id": "admin", "displayName": "admin"}
    assert _recent(rejected["processedAt"])
    # stored, not only echoed: GET and the list say the same
    assert api.call("GET", _url(api_id, subs["alice"]), 200)["publisherMessage"] == \
        "not a partner yet"
    listed = {s["id"]: s for s in api.call("GET", f"{B}/v4/apis/{api_id}/subscriptions", 200)}
    assert listed[subs["alice"]["id"]]["publisherMessage"] == "not a partner yet"
    assert listed[subs["bob"]["id"]]["publisherMessage"] is None


def test_accept_and_reject_paths_take_a_reason(world):
    api, api_id, subs = world
    accepted = api.call("POST", _url(api_id, subs["alice"], "_accept"), 200,
                        json={"reason": "welcome", "customApiKey": "alice-custom-key-1"})
    assert accepted["status"] == "ACCEPTED" and accepted["publisherMessage"] == "welcome"
    assert accepted["keys"][0]["key"] == "alice-custom-key-1"
    # accepting again is the no-op _process has: the first reason stays
    again = api.call("POST", _url(api_id, subs["alice"], "_accept"), 200,
                     json={"reason": "second thoughts"})
    assert again["publisherMessage"] == "welcome"
    # rejecting an accepted one is refused, and changes nothing
    api.call("POST", _url(api_id, subs["alice"], "_reject"), 400, json={"reason": "no"})
    assert api.call("GET", _url(api_id, subs["alice"]), 200)["status"] == "ACCEPTED"
    # no body: rejected without a reason
    rejected = api.call("POST", _url(api_id, subs["bob"], "_reject"), 200)
    assert rejected["status"] == "REJECTED" and rejected["publisherMessage"] is None
    assert rejected["processedAt"] is not None and rejected["keys"] == []


@pytest.mark.parametrize("reason, where", [
    (123, "must be a string"),
    (["no"], "must be a string"),
    ({"text": "no"}, "must be a string"),
    ("x" * (MAX_REASON + 1), f"at most {MAX_REASON} characters"),
    ("line\x1b[31mred", "control character U+001B"),
    ("nul\x00byte", "control character U+0000"),
])
@pytest.mark.parametrize("path, extra", [("_process", {"accepted": False}), ("_reject", {}),
                                         ("_accept", {})])
def test_a_bad_reason_is_a_400_naming_it_and_nothing_is_processed(world, reason, where,
                                                                   path, extra):
    api, api_id, subs = world
    answer = api.call("POST", _url(api_id, subs["alice"], path), 400,
                      json={**extra, "reason": reason})
    assert "$.reason" in answer["message"] and where in answer["message"], answer
    assert answer["http_status"] == 400
    after = api.call("GET", _url(api_id, subs["alice"]), 200)
    assert after["status"] == "PENDING" and after["processedAt"] is None


def test_a_reason_of_max_length_with_newlines_is_kept():
    text = ("line one\n\tline two " * 100)[:MAX_REASON]
    from evgate.services.subscriptions import _reason
    assert _reason(text) == text.strip()
    assert _reason("   ") is None


@pytest.mark.parametrize("body, status", [("[1]", 400), ('"no"', 400), ("{", 400)])
def test_accept_reject_bodies_must_be_json_objects(world, body, status):
    api, api_id, subs = world
    for path in ("_accept", "_reject"):
        response = api.client.post(_url(api_id, subs["alice"], path), headers=ADMIN,
                                   data=body, content_type="application/json")
        assert response.status_code == status, response.get_data(True)
        assert response.get_json()["message"]
    response = api.client.post(_url(api_id, subs["alice"], "_reject"), headers=ADMIN,
                               data="reason=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert api.call("GET", _url(api_id, subs["alice"]), 200)["status"] == "PENDING"


def test_users_cannot_accept_or_reject_even_their_own(world):
    api, api_id, subs = world
    for creds in (ALICE, BOB):
        for path, body in (("_accept", {"reason": "me"}), ("_reject", {"reason": "me"}),
                           ("_process", {"accepted": True, "reason": "me"})):
            response = api.client.post(_url(api_id, subs["alice"], path), headers=creds,
                                       json=body)
            assert response.status_code in (403, 404), (path, response.status_code)
    after = api.call("GET", _url(api_id, subs["alice"]), 200)
    assert after["status"] == "PENDING" and after["publisherMessage"] is None


def test_the_owner_reads_the_reason_but_not_the_admins_name(world):
    api, api_id, subs = world
    api.call("POST", _url(api_id, subs["alice"], "_reject"), 200,
             json={"reason": "please fill in your company"})
    for url in (_url(api_id, subs["alice"]), f"{P}/subscriptions/{subs['alice']['id']}"):
        mine = api.call("GET", url, 200, headers=ALICE)
        assert mine["publisherMessage"] == "please fill in your company"
        assert mine["processedAt"] is not None
        assert mine["processedBy"] is None  # an ADMIN's account name is not a USER's to see
        # bob sees neither the subscription nor its reason
        response = api.client.get(url, headers=BOB)
        assert response.status_code == 404
        assert "please fill in" not in response.get_data(True)
    for url in (f"{P}/subscriptions", f"{B}/v4/apis/{api_id}/subscriptions"):
        text = api.client.get(url, headers=BOB).get_data(True)
        assert "please fill in" not in text and subs["alice"]["id"] not in text


def test_service_layer_checks_the_reason_and_the_role(repo, world):
    _api, api_id, subs = world
    alice = SubscriptionService(repo, Principal("alice", frozenset({"USER"})))
    with pytest.raises(ForbiddenError):
        alice.process(api_id, subs["alice"]["id"], {"accepted": True, "reason": "self"})
    with pytest.raises(NotFoundError):
        alice.process(api_id, subs["bob"]["id"], {"accepted": True})
    admin = SubscriptionService(repo, Principal("root", frozenset({"ADMIN"})))
    with pytest.raises(BadRequestError):
        admin.process(api_id, subs["alice"]["id"], {"accepted": True, "reason": 5})
    done = admin.process(api_id, subs["alice"]["id"], {"accepted": True, "reason": "ok"})
    assert done["processedBy"]["id"] == "root" and done["publisherMessage"] == "ok"


# -- console --------------------------------------------------------------------------------
def test_console_reject_and_approve_keep_the_reason_and_show_it(client, world):
    api, api_id, subs = world
    token = sign_in(client)
    base = C + f"/apis/{api_id}/subscriptions"
    response = client.post(f"{base}/{subs['alice']['id']}/reject",
                           data={"csrf_token": token, "reason": "<b>not yet</b>"})
    assert response.status_code == 303
    response = client.post(f"{base}/{subs['bob']['id']}/approve",
                           data={"csrf_token": token, "reason": "welcome bob"})
    assert response.status_code == 303
    assert api.call("GET", _url(api_id, subs["alice"]), 200)["publisherMessage"] == \
        "<b>not yet</b>"
    assert api.call("GET", _url(api_id, subs["bob"]), 200)["publisherMessage"] == "welcome bob"
    page = client.get(C + "/subscriptions").get_data(True)
    assert "Reason: &lt;b&gt;not yet&lt;/b&gt;" in page and "<b>not yet</b>" not in page
    assert "Reason: welcome bob" in page and "by admin" in page


def test_console_shows_a_bad_reason_and_processes_nothing(client, world):
    api, api_id, subs = world
    token = sign_in(client)
    response = client.post(C + f"/apis/{api_id}/subscriptions/{subs['alice']['id']}/reject",
                           data={"csrf_token": token, "reason": "y" * (MAX_REASON + 1)},
                           follow_redirects=True)
    page = response.get_data(True)
    assert f"$.reason: at most {MAX_REASON} characters" in page
    assert "subscription rejected" not in page
    assert api.call("GET", _url(api_id, subs["alice"]), 200)["status"] == "PENDING"


def test_console_owner_sees_the_reason_without_the_admins_name(client, world):
    api, api_id, subs = world
    api.call("POST", _url(api_id, subs["alice"], "_reject"), 200, json={"reason": "sorry alice"})
    api.call("POST", _url(api_id, subs["bob"], "_reject"), 200, json={"reason": "sorry bob"})
    sign_in(client, "alice", "alice-pw")
    page = client.get(C + "/subscriptions").get_data(True)
    assert "Reason: sorry alice" in page
    assert "sorry bob" not in page and "by admin" not in page


# -- last successful delivery ------------------------------------------------------------------
def _webhook_sub(api: Api) -> tuple[str, str]:
    from .management_fixtures import push_api_definition
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription")
    app = api.create_app()
    sub = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app['id']}"
                   f"&plan={plan['id']}", 201,
                   json={"configuration": {"entrypointId": "webhook",
                                           "callbackUrl": "http://93.184.216.34:9/hook"}})
    assert sub["lastDeliveryAt"] is None
    return api_id, sub["id"]


def test_recorder_writes_the_newest_time_without_a_revision_bump(client, repo):
    api = Api(client)
    api_id, sub_id = _webhook_sub(api)
    before = repo.subscriptions.get(sub_id)
    revision = repo.revision()
    worker1, worker2 = LastDeliveryRecorder(repo), LastDeliveryRecorder(repo)
    worker1.note(sub_id)
    worker1.note("no-such-subscription")  # a subscription deleted meanwhile: no error
    worker1.flush()
    first = repo.subscriptions.get(sub_id)["last_delivery_at"]
    assert first is not None and _recent(first.isoformat())
    assert repo.revision() == revision  # gateways do not resync for it
    assert repo.subscriptions.get(sub_id)["updated_at"] == before["updated_at"]
    # another worker whose delivery is older cannot move it back
    worker2._marks[sub_id] = first.timestamp() - 30
    worker2.flush()
    assert repo.subscriptions.get(sub_id)["last_delivery_at"] == first
    worker2._marks[sub_id] = first.timestamp() + 1
    worker2.flush()
    assert repo.subscriptions.get(sub_id)["last_delivery_at"] > first
    shown = api.call("GET", f"{B}/v4/apis/{api_id}/subscriptions/{sub_id}", 200)
    assert datetime.fromisoformat(shown["lastDeliveryAt"]) > first
    for greenlet in (worker1._greenlet, worker2._greenlet):
        if greenlet is not None:
            greenlet.kill()


def test_recorder_keeps_its_marks_while_the_repository_fails(client, repo, tmp_path):
    from evgate.repository import open_repository
    api = Api(client)
    _api_id, sub_id = _webhook_sub(api)
    from sqlalchemy import create_engine
    broken = open_repository(f"sqlite:///{tmp_path}/other.db")
    broken.engine.dispose()  # the database goes away: a file SQLite cannot open
    broken.engine = create_engine(f"sqlite:///{tmp_path}/missing-dir/x.db")
    recorder = LastDeliveryRecorder(broken)
    recorder.note(sub_id)
    noted = recorder._marks[sub_id]
    recorder.flush()  # must not raise
    assert recorder._marks[sub_id] == noted and recorder._failing
    recorder.repo = repo
    recorder.flush()
    assert not recorder._marks and not recorder._failing
    assert repo.subscriptions.get(sub_id)["last_delivery_at"].timestamp() == \
        pytest.approx(noted, abs=1e-3)
    if recorder._greenlet is not None:
        recorder._greenlet.kill()


def test_console_shows_last_success_of_a_webhook_subscription(client, repo):
    api = Api(client)
    _api_id, sub_id = _webhook_sub(api)
    sign_in(client)
    page = client.get(C + "/subscriptions").get_data(True)
    assert "last success never" in page
    stamp = datetime(2026, 11, 30, 12, 34, 56, tzinfo=timezone.utc)
    repo.subscriptions.record_deliveries({sub_id: stamp})
    page = client.get(C + "/subscriptions").get_data(True)
    assert "last success" in page and "2026-11-30T12:34:56" in page

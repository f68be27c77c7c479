"""The console as a user sees it: headless Chromium driven by Selenium against a real gunicorn
management server, a real gateway and the real Kafka broker.

Signs in, imports an API from a file, stops and starts it, sees it listed, approves a pending
subscription, watches a record produced to the API's topic appear in the live view (and the
filter box keep only what its EL expression selects), sees a bad definition's problem at its
JSON path, and reads the charts. With EVGATE_SCREENSHOTS_DIR set, the pages are saved there
as PNG (docs/console/ holds the ones shown in the README).

Needs the Debian packages `chromium` and `chromium-driver` (scripts/test-deps.sh installs
them) and the `selenium` package (setup.py, extra `dev`).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.kafka_broker import create_topic
from tests.support.streams import producer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("needs the Debian packages chromium and chromium-driver "
                "(scripts/test-deps.sh)", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

M = "/management/organizations/DEFAULT/environments/DEFAULT"
PASSWORD = "adm1n-" + uuid.uuid4().hex[:12]


def rest(server, method: str, path: str, body=None, user=("admin", PASSWORD)):
    token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    request = urllib.request.Request(
        server.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        raw = answer.read()
        return json.loads(raw) if raw.strip() else None


def definition(topic: str, path: str) -> dict:
    return {
        "id": str(uuid.uuid4()), "name": f"Orders {topic[-6:]}", "apiVersion": "1.0",
        "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post"}, {"type": "sse"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka", "inheritConfiguration": False,
             "configuration": {"topics": [topic], "consumer": {"enabled": True},
                               "producer": {"enabled": True}}}]}],
        "plans": [
            {"id": str(uuid.uuid4()), "name": "open", "security": {"type": "key-less"},
             "status": "published"},
            {"id": str(uuid.uuid4()), "name": "partners", "security": {"type": "api-key"},
             "validation": "manual", "status": "published"}],
    }


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--no-first-run"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                              options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Page:
    def __init__(self, driver, base: str, shots: Path | None):
        self.driver, self.base, self.shots = driver, base, shots

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait(self, condition, timeout: float = 15.0):
        return WebDriverWait(self.driver, timeout).until(condition)

    def text(self, css: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def click(self, css: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def shot(self, name: str) -> None:
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))


def test_console_end_to_end(gateway_factory, kafka_bootstrap, unique_topic, tmp_path, browser):
    create_topic(kafka_bootstrap, unique_topic)
    gateway = gateway_factory(workers=1)
    management = gateway_factory(app="wsgi:management", workers=1, env={
        "EVGATE_ADMIN_PASSWORD": PASSWORD, "EVGATE_CONSOLE_NODE_URLS": gateway.node_url})
    shots = os.environ.get("EVGATE_SCREENSHOTS_DIR")
    page = Page(browser, management.url, Path(shots) if shots else None)

    # -- sign in (a wrong password first) ------------------------------------------------------
    page.open("/console/apis")
    page.wait(EC.presence_of_element_located((By.ID, "sign-in")))
    assert "/console/login" in browser.current_url
    page.shot("sign-in")
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys("not-the-password")
    page.click("#sign-in")
    assert "wrong user name or password" in page.wait(
        EC.presence_of_element_located((By.ID, "login-error"))).text
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    page.click("#sign-in")
    page.wait(EC.presence_of_element_located((By.ID, "apis")))
    cookie = browser.get_cookie("evgate_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # -- import an API from a file; stop and start it; see it listed ----------------------------
    path = f"/console-{unique_topic[-6:]}"
    api = definition(unique_topic, path)
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(api))
    browser.find_element(By.ID, "import-file").send_keys(str(file))
    page.click("#import")
    assert page.wait(EC.presence_of_element_located((By.ID, "api-state"))).text == "STARTED"
    assert f"/console/apis/{api['id']}" in browser.current_url
    page.click("#api-stop")
    page.wait(EC.text_to_be_present_in_element((By.ID, "api-state"), "STOPPED"))
    page.click("#api-start")
    page.wait(EC.text_to_be_present_in_element((By.ID, "api-state"), "STARTED"))
    page.open("/console/apis")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-api-id="{api["id"]}"]')
    assert "STARTED" in row.text and path in row.text and "http-post, sse" in row.text
    assert "partners · api-key · published" in row.text
    page.shot("apis")
    browser.set_window_size(390, 844)  # a phone: tables scroll inside, the page does not
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.shot("apis-phone")
    browser.set_window_size(1280, 900)

    # -- approve a pending subscription --------------------------------------------------------
    rest(management, "PUT", M + "/users/alice", {"password": "alice-pw-1", "roles": ["USER"]})
    alice = ("alice", "alice-pw-1")
    app = rest(management, "POST", "/portal/environments/DEFAULT/applications",
               {"name": "alice-shop"}, user=alice)
    sub = rest(management, "POST", "/portal/environments/DEFAULT/subscriptions",
               {"application": app["id"], "plan": api["plans"][1]["id"]}, user=alice)
    assert sub["status"] == "PENDING"
    page.open("/console/subscriptions")
    Select(browser.find_element(By.ID, "status-filter")).select_by_visible_text("PENDING")
    page.click("#filter")
    selector = f'tr[data-subscription-id="{sub["id"]}"]'
    page.wait(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))
    page.shot("subscriptions")
    approve_form = browser.find_element(By.CSS_SELECTOR, selector + " button.approve") \
        .find_element(By.XPATH, "./ancestor::form")
    approve_form.find_element(By.NAME, "reason").send_keys("partner since 2024")
    approve_form.find_element(By.CSS_SELECTOR, "button.approve").click()
    page.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash.ok"),
                                               "subscription approved"))
    stored = rest(management, "GET", M + f"/v4/apis/{api['id']}/subscriptions/{sub['id']}")
    assert stored["status"] == "ACCEPTED" and stored["keys"]
    assert stored["publisherMessage"] == "partner since 2024"
    page.open("/console/subscriptions")
    assert "Reason: partner since 2024" in page.text(selector + " td.status")

    # -- live view: a record produced to the topic appears within seconds -----------------------
    page.open(f"/console/apis/{api['id']}")
    page.click("#live-link")
    page.wait(EC.text_to_be_present_in_element((By.ID, "live-status"), "live"))
    marker = uuid.uuid4().hex
    kafka = producer(kafka_bootstrap)
    kafka.produce(unique_topic, json.dumps({"kind": "order", "id": marker}).encode(),
                  key=b"customer-42", headers=[("source", b"browser-test")])
    assert kafka.flush(15) == 0
    started = time.monotonic()
    cell = page.wait(EC.presence_of_element_located(
        (By.XPATH, f'//table[@id="live-rows"]//td[contains(., "{marker}")]')), timeout=10)
    assert time.monotonic() - started < 10
    live_row = cell.find_element(By.XPATH, "..").text
    assert "customer-42" in live_row and "source: browser-test" in live_row
    page.shot("live")

    # the filter box: the message-filtering EL, only matching records shown
    box = browser.find_element(By.ID, "live-filter")
    box.send_keys("{#jsonPath(#message.content, '$.kind') == 'refund'}")
    page.click("#apply-filter")
    page.wait(EC.text_to_be_present_in_element((By.ID, "live-status"), "live"))
    hidden, shown = uuid.uuid4().hex, uuid.uuid4().hex
    kafka.produce(unique_topic, json.dumps({"kind": "order", "id": hidden}).encode())
    kafka.produce(unique_topic, json.dumps({"kind": "refund", "id": shown}).encode())
    assert kafka.flush(15) == 0
    page.wait(EC.presence_of_element_located(
        (By.XPATH, f'//table[@id="live-rows"]//td[contains(., "{shown}")]')), timeout=10)
    assert hidden not in page.text("#live-rows")
    page.wait(EC.text_to_be_present_in_element((By.ID, "live-status"), "filtered out 1"))
    # a bad expression is shown, not streamed
    page.open(f"/console/apis/{api['id']}/live?filter=%7B%23message.content%20%3D%3D%7D")
    assert "filter:" in page.wait(EC.presence_of_element_located((By.ID, "live-problem"))).text

    # -- a bad definition's problem at its JSON path --------------------------------------------
    page.open(f"/console/apis/{api['id']}")
    area = browser.find_element(By.ID, "definition")
    bad = json.loads(area.get_attribute("value"))
    bad["listeners"][0]["entrypoints"][1]["type"] = "carrier-pigeon"
    browser.execute_script("arguments[0].value = arguments[1];", area, json.dumps(bad, indent=2))
    page.click("#save-definition")
    problems = page.wait(EC.presence_of_element_located((By.ID, "problems"))).text
    assert "$.listeners[0].entrypoints[1].type" in problems and "carrier-pigeon" in problems
    browser.execute_script("document.getElementById('problems').scrollIntoView()")
    page.shot("definition-problem")
    assert rest(management, "GET", M + f"/v4/apis/{api['id']}")["listeners"][0][
        "entrypoints"][1]["type"] == "sse"  # nothing saved

    # -- charts from the gateway's own metrics -----------------------------------------------------
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the gateway syncs the imported API within a second
        if gateway.request("POST", path, b'{"kind": "order"}')[0] == 202:
            break
        time.sleep(0.3)
    page.open("/console/charts")
    page.wait(EC.text_to_be_present_in_element((By.ID, "charts-status"), "updated"))
    for _ in range(20):
        assert gateway.request("POST", path, b'{"kind": "order"}')[0] == 202
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-requests canvas")) == 1)
    data = json.loads(urllib.request.urlopen(urllib.request.Request(
        management.url + "/console/charts/data.json",
        headers={"Cookie": f"evgate_console={browser.get_cookie('evgate_console')['value']}"}),
        timeout=10).read())
    assert api["id"] in data["apis"] and data["nodes"][0]["ok"]
    time.sleep(6)  # one more refresh, so the lines have two points
    page.shot("charts")

    # -- sign out ends the session -------------------------------------------------------------
    page.open("/console/apis")
    page.click(".signout button")
    page.wait(EC.presence_of_element_located((By.ID, "sign-in")))
    page.open("/console/apis")
    assert "/console/login" in browser.current_url


def _signed_in(server, password: str = PASSWORD):
    import re

    import requests
    session = requests.Session()
    page = session.get(server.url + "/console/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = session.post(server.url + "/console/login", allow_redirects=False, timeout=30,
                          data={"username": "admin", "password": password, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return session


def _events(response):
    """(event, data) pairs of an SSE response, as they come."""
    event = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


def test_live_view_joins_no_group_and_is_bounded(gateway_factory, kafka_bootstrap,
                                                 unique_topic):
    """The live view reads in no consumer group (none appears on the broker), a second viewer
    past EVGATE_CONSOLE_LIVE_MAX_VIEWERS gets 503, and a viewer that leaves frees its place."""
    from confluent_kafka.admin import AdminClient
    create_topic(kafka_bootstrap, unique_topic)
    api = definition(unique_topic, f"/live-{unique_topic[-6:]}")
    management = gateway_factory([api], app="wsgi:management", workers=1, env={
        "EVGATE_ADMIN_PASSWORD": PASSWORD, "EVGATE_CONSOLE_LIVE_MAX_VIEWERS": "1"})
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def groups() -> set[str]:
        listed = admin.list_consumer_groups(request_timeout=10).result()
        return {g.group_id for g in listed.valid}

    before = groups()
    session = _signed_in(management)
    url = management.url + f"/console/apis/{api['id']}/live/stream"
    first = session.get(url, stream=True, timeout=30)
    assert first.status_code == 200
    events = _events(first)
    assert next(events)[0] == "ready"
    second = session.get(url, timeout=30)
    assert second.status_code == 503 and second.headers["Retry-After"] == "10"
    marker = uuid.uuid4().hex
    kafka = producer(kafka_bootstrap)
    kafka.produce(unique_topic, marker.encode(), key=b"k1")
    assert kafka.flush(15) == 0
    kind, data = next(events)
    assert kind == "message" and data["content"] == marker and data["key"] == "k1"
    assert data["partition"] == 0 and data["offset"] == 0
    assert groups() - before == set(), "the live view must not create or join a group"
    first.close()
    deadline = time.monotonic() + 20  # noticed at the next heartbeat write (5 s)
    while True:
        again = session.get(url, stream=True, timeout=30)
        if again.status_code == 200:
            again.close()
            break
        assert again.status_code == 503 and time.monotonic() < deadline
        again.close()
        time.sleep(1)

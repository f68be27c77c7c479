"""CORS in a real browser: headless Chromium with its web security ON (no
--disable-web-security). A page served from another origin (a tiny HTTP server on another
127.0.0.1 port) POSTs JSON to an http-post entrypoint (a preflighted request: Content-Type
application/json) and reads the same topic with EventSource; a page from an origin the listener
does not allow is refused by the browser itself (the fetch rejects, EventSource fails) and its
message never reaches Kafka. Real gunicorn, real Kafka.

Needs the Debian package `chromium` (`apt-get install -y chromium`; `make test` installs it).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.support.ports import free_ports
from tests.support.kafka_broker import consume_all, create_topic
from tests.support.streams import kafka_endpoint, stream_api
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html><html><body><script>
const gateway = "%(gateway)s";
function report(entry) {
  fetch("/report", {method: "POST", body: JSON.stringify(entry)});   // same origin: no CORS
}
const source = new EventSource(gateway + "/cors/events");
source.onmessage = (e) => report({kind: "event", data: e.data, id: e.lastEventId});
source.onerror = () => report({kind: "eventsource-error", state: source.readyState});
source.onopen = async () => {
  report({kind: "open"});
  try {
    const response = await fetch(gateway + "/cors/events", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({from: location.origin})});
    report({kind: "posted", status: response.status,
            tx: response.headers.get("X-Gravitee-Transaction-Id")});
  } catch (error) {
    report({kind: "post-rejected", error: String(error)});
  }
};
// the refused page never opens its EventSource: it still tries the POST
setTimeout(async () => {
  if (source.readyState === EventSource.OPEN) return;
  try {
    const response = await fetch(gateway + "/cors/events", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({from: location.origin})});
    report({kind: "posted", status: response.status});
  } catch (error) {
    report({kind: "post-rejected", error: String(error)});
  }
}, 3000);
</script></body></html>"""

PAGE_SERVER = r'''
import sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
PORT, PAGE, REPORTS = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        data = open(PAGE, "rb").read()
        self.send_response(200); self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(REPORTS, "ab") as out:
            out.write(body + b"\n")
        self.send_response(204); self.end_headers()

ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
'''


def _page_server(directory, name, gateway_url, port):
    page = directory / f"{name}.html"
    page.write_text(PAGE % {"gateway": gateway_url})
    reports = directory / f"{name}.reports"
    reports.write_text("")
    script = directory / "page_server.py"
    script.write_text(PAGE_SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(page), str(reports)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port, reports


def _reports(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _browser(url):
    profile = tempfile.mkdtemp(prefix="evgate-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, profile


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium is not installed "
                                             "(apt-get install -y chromium)")
def test_cross_origin_page_posts_json_and_reads_sse(gateway_factory, kafka_bootstrap,
                                                    unique_topic, tmp_path):
    create_topic(kafka_bootstrap, unique_topic)
    allowed_port = free_ports(2)  # two distinct ports (two picks could coincide)
    refused_port = allowed_port + 1
    api = stream_api("/cors/events", [{"type": "http-post"}, {"type": "sse", "configuration": {
        "heartbeatIntervalInMs": 1000}}], kafka_endpoint(unique_topic))
    api["listeners"][0]["cors"] = {
        "enabled": True, "allowOrigin": [rf"http://127\.0\.0\.1:{allowed_port}"],
        "allowHeaders": ["content-type"], "allowMethods": ["GET", "POST"],
        "exposeHeaders": ["X-Gravitee-Transaction-Id"], "maxAge": 60}
    gw = gateway_factory([api], workers=1)
    started = []
    try:
        allowed = _page_server(tmp_path, "allowed", gw.url, allowed_port)
        refused = _page_server(tmp_path, "refused", gw.url, refused_port)
        started += [allowed[0], refused[0]]
        for port in (allowed_port, refused_port):
            wait_for(lambda: _port_open(port), f"page server on {port}", timeout=10)
        browsers = [_browser(f"http://127.0.0.1:{allowed_port}/"),
                    _browser(f"http://127.0.0.1:{refused_port}/")]
        try:
            kinds = lambda path: [r["kind"] for r in _reports(path)]  # noqa: E731
            wait_for(lambda: "event" in kinds(allowed[2]), "the allowed page's SSE event",
                     timeout=45)
            wait_for(lambda: "post-rejected" in kinds(refused[2]),
                     "the refused page's fetch to reject", timeout=45)
        finally:
            for proc, profile in browsers:
                proc.kill()
                proc.wait()
                shutil.rmtree(profile, ignore_errors=True)
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    good = _reports(allowed[2])
    posted = [r for r in good if r["kind"] == "posted"]
    assert posted and posted[0]["status"] == 202
    assert posted[0]["tx"], "X-Gravitee-Transaction-Id is exposed to the page"
    event = next(r for r in good if r["kind"] == "event")
    assert json.loads(event["data"]) == {"from": f"http://127.0.0.1:{allowed_port}"}
    assert event["id"]
    bad = _reports(refused[2])
    assert "event" not in [r["kind"] for r in bad] and "posted" not in [r["kind"] for r in bad]
    assert "eventsource-error" in [r["kind"] for r in bad]
    # only the allowed page's message reached Kafka: the refused preflight stopped the POST
    records = consume_all(kafka_bootstrap, unique_topic, 2, timeout=3)
    assert [json.loads(r.value()) for r in records] == [
        {"from": f"http://127.0.0.1:{allowed_port}"}]
    log = gw.log_path.read_text()
    assert "Traceback" not in log


def _port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False



APP_ORIGIN = "https://app.example.com"


def test_sse_fast_path_and_websocket_origin_check_on_gunicorn(gateway_factory, kafka_bootstrap,
                                                              unique_topic):
    """Without a browser: the SSE direct-write fast path (HTTP/1.1 on a real socket) carries the
    headers; a WebSocket upgrade from another origin is 403 before any subscription opens."""
    import websocket

    from tests.support.streams import SseClient, produce, stream_stats
    create_topic(kafka_bootstrap, unique_topic)
    api = stream_api("/cors/ws", [{"type": "websocket"}, {"type": "sse"}],
                     kafka_endpoint(unique_topic))
    api["listeners"][0]["cors"] = {"enabled": True, "allowOrigin": [APP_ORIGIN],
                                   "allowCredentials": True}
    gw = gateway_factory([api], workers=1, env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
    for origin, expected in ((APP_ORIGIN, APP_ORIGIN), ("https://evil.example.net", None)):
        sse = SseClient(gw.url, "/cors/ws", headers={"Origin": origin})
        try:
            assert sse.status == 200
            assert sse.response.getheader("Access-Control-Allow-Origin") == expected
            assert sse.response.getheader("Access-Control-Allow-Credentials") == (
                "true" if expected else None)
            assert sse.response.getheader("Vary") == "Origin"
        finally:
            sse.close()
    url = f"ws://127.0.0.1:{gw.port}/cors/ws"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, origin="https://evil.example.net", timeout=10)
    assert refused.value.status_code == 403
    assert b"CORS_ORIGIN_NOT_ALLOWED" in refused.value.resp_body
    # the gateway's own origin is not in allowOrigin either (websocket-client's default Origin)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, timeout=10)
    # an allowed page and a tool that sends no Origin both get the stream
    allowed = websocket.create_connection(url, origin=APP_ORIGIN, timeout=10)
    tool = websocket.create_connection(url, suppress_origin=True, timeout=10)
    try:
        wait_for(lambda: any(s["subscriptions"] >= 2
                             for s in stream_stats(gw.log_path.read_text())[-3:]),
                 "both WebSocket subscriptions")
        produce(kafka_bootstrap, unique_topic, ["hello"])
        assert allowed.recv() == "hello" and tool.recv() == "hello"
    finally:
        allowed.close()
        tool.close()

"""A real browser: headless Chromium's EventSource reads a Kafka-backed SSE stream, the
gateway drops the connection (its worker is killed), the browser reconnects by itself with
Last-Event-ID and the page ends up with every record once, in order.

Needs the Debian package `chromium` (`apt-get install -y chromium`; `make test` installs it).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.support.kafka_broker import create_topic
from tests.support.streams import kafka_endpoint, produce, stream_api

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html><html><body><script>
const seen = [];
const source = new EventSource("/browser/events");
source.onmessage = (e) => {
  seen.push(e.data);
  fetch("/browser/report", {method: "POST", body: JSON.stringify(seen)});
};
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium is not installed "
                                             "(apt-get install -y chromium)")
def test_eventsource_resumes_after_server_side_disconnect(gateway_factory, kafka_bootstrap,
                                                         unique_topic, tmp_path):
    create_topic(kafka_bootstrap, unique_topic)
    report_topic = unique_topic + "-report"
    create_topic(kafka_bootstrap, report_topic)
    events = stream_api("/browser/events", [{"type": "sse", "configuration": {
        "heartbeatIntervalInMs": 1000}}], kafka_endpoint(unique_topic))
    # The page and the browser's reports go through the gateway too (same origin): the mock
    # endpoint serves nothing here, so a tiny static server is not needed; reports are
    # produced to Kafka by an http-post API and read back from the topic.
    report = stream_api("/browser/report", [{"type": "http-post"}],
                        kafka_endpoint(report_topic))
    gw = gateway_factory([events, report], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
    page_server = _serve_page(tmp_path, gw.port)
    profile = tempfile.mkdtemp(prefix="evgate-chromium-")
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         f"http://127.0.0.1:{page_server[1]}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: "subscriptions=1" in gw.log_path.read_text(), 30)
        produce(kafka_bootstrap, unique_topic, [f"e{i}" for i in range(3)])
        _wait_for(lambda: _last_report(kafka_bootstrap, report_topic) == ["e0", "e1", "e2"], 30,
                  lambda: f"last report: {_last_report(kafka_bootstrap, report_topic)}")
        # Server-side disconnect: kill the worker holding the stream; gunicorn forks another.
        worker = _worker_pids(gw.proc.pid)[0]
        os.kill(worker, signal.SIGKILL)
        produce(kafka_bootstrap, unique_topic, [f"e{i}" for i in range(3, 6)])
        expected = [f"e{i}" for i in range(6)]
        _wait_for(lambda: _last_report(kafka_bootstrap, report_topic) == expected, 60,
                  lambda: f"last report: {_last_report(kafka_bootstrap, report_topic)}")
    finally:
        browser.kill()
        browser.wait()
        page_server[0].kill()
        page_server[0].wait()
        shutil.rmtree(profile, ignore_errors=True)


def _serve_page(tmp_path, gateway_port):
    """A reverse proxy is overkill: the page is served by a tiny Python server that also
    forwards /browser/* to the gateway (same origin for EventSource and fetch)."""
    from tests.support.gateway import free_port
    port = free_port()
    (tmp_path / "index.html").write_text(PAGE)
    script = tmp_path / "page_server.py"
    script.write_text(_PAGE_SERVER)
    proc = subprocess.Popen([os.sys.executable, str(script), str(port), str(gateway_port),
                             str(tmp_path / "index.html")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: _port_open(port), 10)
    return proc, port


_PAGE_SERVER = r'''
import sys, http.client
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
PORT, UPSTREAM, PAGE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def _proxy(self, method):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() in
                   ("accept", "last-event-id", "content-type")}
        try:
            conn.request(method, self.path, body=body, headers=headers)
            resp = conn.getresponse()
        except OSError:
            self.send_response(502); self.send_header("Content-Length", "0"); self.end_headers()
            return
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                self.wfile.write(chunk); self.wfile.flush()
        except OSError:
            pass
    def do_GET(self):
        if self.path.startswith("/browser/"):
            return self._proxy("GET")
        data = open(PAGE, "rb").read()
        self.send_response(200); self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_POST(self):
        return self._proxy("POST")

ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
'''


def _port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _worker_pids(master):
    from pathlib import Path
    return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def _last_report(bootstrap, topic):
    """The page's longest report (reports are concurrent POSTs: they may land out of order)."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        if high <= 0:
            return None
        consumer.assign([TopicPartition(topic, 0, 0)])
        reports = []
        while len(reports) < high:
            msg = consumer.poll(10)
            if msg is None:
                break
            if msg.error() is None:
                reports.append(json.loads(msg.value()))
        return max(reports, key=len) if reports else None
    finally:
        consumer.close()


def _wait_for(condition, timeout, describe=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met in time {describe()}")

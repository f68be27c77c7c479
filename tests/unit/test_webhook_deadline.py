"""The overall delivery deadline, under gevent as in a gateway worker: an answer that drips in
(each read within the read timeout) or never comes is cut at the deadline, and the connection
is closed, not pooled. Runs in a subprocess because it needs gevent's monkey patching."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
from gevent import monkey; monkey.patch_all()
import json, time
from tests.support.receiver import Receiver
from evgate.entrypoints.webhook.delivery import DeadlineExceeded, DeliveryLoop
from evgate.entrypoints.webhook.http import pinned_session
from evgate.entrypoints.webhook.ssrf import SsrfPolicy, parse_networks
from evgate.entrypoints.webhook.target import WebhookTarget

def established_to(port):
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count

policy = SsrfPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
results = []
with Receiver() as rx:
    rx.script(("drip", 0.3, 40), ("hang", 6.0), 200)
    loop = DeliveryLoop.__new__(DeliveryLoop)   # only the HTTP part of a loop
    loop.target = WebhookTarget(url=rx.url, connect_timeout_s=1.0, read_timeout_s=2.0,
                                deadline_s=1.5)
    loop.session = pinned_session(policy)
    for _ in range(3):
        started = time.monotonic()
        try:
            response, body = loop._post_within_deadline(b"x", {})
            outcome = response.status_code
        except DeadlineExceeded as exc:
            outcome = str(exc)
        pools = loop.session.get_adapter(rx.url).poolmanager.pools
        pooled = sum(1 for key in pools.keys() for c in list(pools[key].pool.queue)
                     if c is not None and c.sock is not None)
        results.append([outcome, round(time.monotonic() - started, 2), pooled,
                        established_to(rx.port)])

# a listener whose backlog is full and never accepts: the SYN goes unanswered, connect hangs
import socket
full = socket.socket()
full.bind(("127.0.0.1", 0))
full.listen(0)
port = full.getsockname()[1]
queued = []
for _ in range(8):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    queued.append(s)
time.sleep(0.2)
loop.target = WebhookTarget(url=f"http://127.0.0.1:{port}/hook", connect_timeout_s=5.0,
                            read_timeout_s=2.0, deadline_s=1.5)
started = time.monotonic()
try:
    loop._post_within_deadline(b"x", {})
    outcome = "answered"
except DeadlineExceeded as exc:
    outcome = str(exc)
except Exception as exc:
    outcome = type(exc).__name__
results.append([outcome, round(time.monotonic() - started, 2), 0, 0])
print(json.dumps(results))
"""


def test_dripping_hanging_and_unanswered_attempts_are_cut_and_their_connections_closed():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr
    drip, hang, normal, connect = json.loads(done.stdout.strip().splitlines()[-1])
    assert connect[0] == "callback did not answer within the 1.5s delivery deadline"
    assert 1.4 <= connect[1] < 3.0           # the deadline, not the 5 s connect timeout
    for cut in (drip, hang):
        outcome, elapsed, pooled, established = cut
        assert outcome == "callback did not answer within the 1.5s delivery deadline"
        assert 1.4 <= elapsed < 3.0          # the deadline, not the 12 s drip or 6 s hang
        assert pooled == 0 and established == 0
    assert normal[0] == 200 and normal[2] == 1   # a full answer keeps its keep-alive conn

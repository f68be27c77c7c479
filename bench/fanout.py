"""SSE fan-out benchmark: evgate (real gunicorn + real Kafka) against a bare gevent SSE
broadcaster (no Kafka, no gateway logic) in the same run.

    .venv/bin/python bench/fanout.py                      # 1000 clients x 10 msg/s, 20 s
    .venv/bin/python bench/fanout.py --clients 10000 --rate 10 --duration 30 --loadgens 2 \
        --workers 2 --direct both                          # the 10k target

N SSE clients are opened by separate load-generator processes on loopback: by default Node
(bench/loadgen/sse_clients.js, raw sockets, a 1 ms latency histogram per process, merged here),
or `--loadgen python` (gevent; its cost per read made it, not the server, the bottleneck at
5,000 clients when every message arrives as its own segment). A producer writes R records/s
with a send timestamp in the payload. Reported per target: deliveries/s, produce->receive
p50/p99 (ms), errors, disconnects, RSS per idle connection (server RSS growth after connecting
the clients, before any record), server CPU per delivery (user + sys of the server processes
while producing: steadier than latency on a shared machine) and the load generators' CPU
meanwhile (they share the cores). With Node, deliveries later than `--drain` seconds after
the last record are missing (received < expected). `--direct both` runs evgate twice, with
and without the SSE fast path (EVGATE_SSE_DIRECT_WRITE). Not a test: no thresholds here.
Temporary files (load-generator results, the gateway's database and log) live in one
directory removed at the end.

    .venv/bin/python bench/fanout.py --protocol ws --clients 10000 ...   # WebSocket clients

`--protocol ws`: WebSocket clients (bench/loadgen/ws_clients.js, the `ws` package: run
`npm ci --prefix bench/loadgen` once), evgate only (`--direct` then toggles
EVGATE_WS_DIRECT_WRITE). While producing, a probe opens a new stream and asks the node port's
health once a second: time to the first byte of each answer (responsiveness under load).
`--ab-tree DIR` also runs evgate from another checkout first (A/B in one invocation: `git
archive <commit> | tar -x -C DIR`); `--profile DIR` records py-spy samples of one worker per
target; `--no-baseline` skips the bare broadcaster. `--handover both` (or `both-reversed`)
runs evgate with and without EVGATE_SSE_HANDOVER (EVGATE_WS_HANDOVER with `--protocol ws`)
in one invocation; `--publisher` (ws) enables the sockets' publisher too (they send
nothing: idle cost and fan-out). Each run also reports
`hub_run_s` / `hub_runqueue_wait_s` per worker: seconds its hub thread ran, and seconds it was
runnable but waited for a core while producing (/proc/PID/schedstat); when the wait dwarfs the
run time the box, not the gateway, sets the latency. The open-files soft limit of this process
(inherited by what it starts) is raised to what the clients need, up to the hard limit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# -- load generator (a separate process) ----------------------------------------------------
def loadgen(host: str, port: int, path: str, clients: int, duration: float, out: str) -> None:
    from gevent import monkey
    monkey.patch_all()
    import gevent
    from gevent import socket

    latencies: list[float] = []
    state = {"received": 0, "errors": 0, "connected": 0}

    def client() -> None:
        try:
            sock = socket.create_connection((host, port), timeout=30)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                         "Accept: text/event-stream\r\n\r\n".encode())
            state["connected"] += 1
            buf = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    state["errors"] += 1
                    return
                now = time.time()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    idx = line.find(b"data: {\"ts\":")
                    if idx >= 0:
                        ts = float(line[idx + 12:].split(b",")[0].rstrip(b"}"))
                        state["received"] += 1
                        if state["received"] % 7 == 0 or len(latencies) < 10000:
                            latencies.append(now - ts)
        except (OSError, ValueError):
            state["errors"] += 1

    greenlets = []
    for _ in range(clients):
        greenlets.append(gevent.spawn(client))
        gevent.sleep(0.001)
    gevent.sleep(duration)
    gevent.killall(greenlets, block=False)
    Path(out).write_text(json.dumps({**state, "latencies": latencies}))


# -- the bare baseline broadcaster (a separate process) --------------------------------------
def baseline_server(port: int, rate: float) -> None:
    from gevent import monkey
    monkey.patch_all()
    import gevent
    from gevent.pywsgi import WSGIServer
    from gevent.queue import Queue, Full

    clients: set = set()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/__start":     # the orchestrator starts the publisher
            gevent.spawn(publisher, int(environ["QUERY_STRING"]))
            start_response("204 No Content", [])
            return [b""]
        queue: Queue = Queue(1000)
        clients.add(queue)
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def stream():
            try:
                yield b"retry: 1000\n\n"
                while True:
                    yield queue.get()
            finally:
                clients.discard(queue)
        return stream()

    def publisher(count):
        # paced on absolute deadlines like evgate's producer (`paced`): sleeping a full
        # interval after each fan-out would offer less than `rate` once a fan-out takes time
        n, interval, start = 0, 1 / rate, time.time()
        while n < count:
            n += 1
            frame = f"id: {n}\nevent: message\ndata: {{\"ts\":{time.time()}}}\n\n".encode()
            for queue in list(clients):
                try:
                    queue.put_nowait(frame)
                except Full:
                    clients.discard(queue)
            gevent.sleep(max(0, start + n * interval - time.time()))

    WSGIServer(("127.0.0.1", port), app, log=None).serve_forever()


# -- orchestration ---------------------------------------------------------------------------
def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """user + sys CPU time of a process (clock ticks in /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _schedstat(pid: int) -> tuple[float, float]:
    """The main thread's (seconds run, seconds waited on the run queue), /proc/PID/schedstat."""
    try:
        run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return (0.0, 0.0)
    return (int(run) / 1e9, int(wait) / 1e9)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_clients(args, port: int, path: str, server_pids: list[int], produce,
                health_url: str | None = None, name: str = "") -> dict:
    """Connect the clients with the chosen load generator, measure idle RSS, produce, and
    report what the clients received (one dict per target)."""
    rss_before = sum(_rss_kib(p) for p in server_pids)
    tmp = Path(tempfile.mkdtemp(prefix="loadgen-", dir=args.tmp))
    per = args.clients // args.loadgens
    if args.loadgen == "node":
        return _run_node_clients(args, port, path, server_pids, produce, rss_before, tmp, per,
                                 health_url, name)
    connect_wait = min(5 + args.clients / 1000, 20)
    procs = [subprocess.Popen([sys.executable, __file__, "--run-python-loadgen", str(port), path,
                               str(per), str(connect_wait + args.duration + 5),
                               str(tmp / f"lg{i}.json")])
             for i in range(args.loadgens)]
    time.sleep(connect_wait)        # connect, then measure idle memory
    rss_idle = sum(_rss_kib(p) for p in server_pids)
    measured = _measure(server_pids, [p.pid for p in procs], produce, args.duration)
    for proc in procs:
        proc.wait(timeout=args.duration + 60)
    results = [json.loads((tmp / f"lg{i}.json").read_text()) for i in range(args.loadgens)]
    latencies = sorted(x for r in results for x in r["latencies"])
    received = sum(r["received"] for r in results)

    def pct(p: float) -> float:
        return round(latencies[int(p * (len(latencies) - 1))] * 1000, 1) if latencies else -1

    return _report(args, per, measured, received, pct(0.5), pct(0.99),
                   connected=sum(r["connected"] for r in results),
                   errors=sum(r["errors"] for r in results),
                   rss_growth=rss_idle - rss_before)


def _measure(server_pids: list[int], loadgen_pids: list[int], produce, duration: float,
             probe=None, profile: str | None = None) -> dict:
    """Produce for `duration`; server and load-generator CPU seconds spent meanwhile, the
    responsiveness probe's figures and, with --profile, py-spy's samples of one worker."""
    cpu_before = sum(_cpu_seconds(p) for p in server_pids)
    lg_before = sum(_cpu_seconds(p) for p in loadgen_pids)
    spy = None
    if profile and server_pids:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record",
                                "--pid", str(server_pids[0]), "--duration",
                                str(round(duration)), "--rate", "50", "--format", "raw",
                                "--output", profile, "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe is not None:
        probe.start()
    sched_before = [_schedstat(p) for p in server_pids]
    started = time.time()
    try:
        sent = produce(duration)
    finally:
        probed = probe.stop() if probe is not None else {}
        if spy is not None:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(5)
    sched = [[b - a for a, b in zip(before, _schedstat(p))]
             for p, before in zip(server_pids, sched_before)]
    return {"sent": sent, "elapsed": time.time() - started,
            "cpu": sum(_cpu_seconds(p) for p in server_pids) - cpu_before,
            "loadgen_cpu": sum(_cpu_seconds(p) for p in loadgen_pids) - lg_before,
            # per worker's main (hub) thread: seconds on a CPU, seconds runnable but waiting
            # for one (an overloaded box: latency then measures the box, not the gateway)
            "hub_run_s": [round(run, 2) for run, _ in sched],
            "hub_runqueue_wait_s": [round(wait, 2) for _, wait in sched],
            "probe": probed}


class Probe:
    """Responsiveness while the clients are served: once a second, a new connection asks for
    `path` (a new SSE stream) and `health_url` (the node port's health); time to the first
    byte of the answer (the status line), and the answers that were not 200 or came too late
    (5 s)."""

    def __init__(self, port: int, path: str, health_url: str | None, upgrade: bool = False):
        import threading
        self.port, self.path, self.health_url, self.upgrade = port, path, health_url, upgrade
        self.samples: dict[str, list[float]] = {"stream": [], "health": []}
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(10)

        def pct(values: list[float], p: float) -> float:
            values = sorted(values)
            return round(values[int(p * (len(values) - 1))] * 1000, 1) if values else -1
        return {f"{name}_ttfb_ms": {"n": len(v), "p50": pct(v, 0.5), "max": pct(v, 1.0)}
                for name, v in self.samples.items()} | {"probe_failures": self.failures}

    def _first_byte(self, port: int, request: bytes, expect: bytes) -> float | None:
        import socket
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                head = sock.recv(12)
                if not head.startswith(expect):
                    return None
                return time.monotonic() - started
        except OSError:
            return None

    def _run(self) -> None:
        from urllib.parse import urlsplit
        stream_req = (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      + ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13"
                         "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" if self.upgrade
                         else "Accept: text/event-stream\r\n") + "\r\n").encode()
        expect = b"HTTP/1.1 101" if self.upgrade else b"HTTP/1.1 200"
        targets = [("stream", self.port, stream_req, expect)]
        if self.health_url:
            url = urlsplit(self.health_url)
            targets.append(("health", url.port, f"GET {url.path} HTTP/1.1\r\nHost: 127.0.0.1"
                            "\r\nConnection: close\r\n\r\n".encode(), b"HTTP/1.1 200"))
        while not self._stop.wait(1.0):
            for name, port, request, expect in targets:
                took = self._first_byte(port, request, expect)
                if took is None:
                    self.failures += 1
                else:
                    self.samples[name].append(took)


def _report(args, per: int, measured: dict, received: int, p50: float, p99: float, *,
            connected: int, errors: int, rss_growth: float, **extra) -> dict:
    # per connected client: not every client may have connected (a WebSocket run that timed out)
    sent, cpu = measured["sent"], measured["cpu"]
    return {"clients": per * args.loadgens, "connected": connected,
            "sent": sent, "expected": sent * per * args.loadgens, "received": received,
            "deliveries_per_s": round(received / measured["elapsed"]),
            "p50_ms": p50, "p99_ms": p99, "errors": errors, **extra,
            "server_cpu_s": round(cpu, 1),
            "cpu_us_per_delivery": round(cpu * 1e6 / max(1, received), 1),
            "loadgen_cpu_s": round(measured["loadgen_cpu"], 1),
            "rss_per_idle_conn_kib": round(rss_growth / max(1, connected), 1),
            "hub_run_s": measured.get("hub_run_s"),
            "hub_runqueue_wait_s": measured.get("hub_runqueue_wait_s"),
            **measured.get("probe", {})}


NODE_LOADGENS = {"sse": ROOT / "bench" / "loadgen" / "sse_clients.js",
                 "ws": ROOT / "bench" / "loadgen" / "ws_clients.js"}
NODE_MAX_CLIENTS = 18000     # per process: the open-files limit here is 20000


def _run_node_clients(args, port: int, path: str, server_pids: list[int], produce,
                      rss_before: int, tmp: Path, per: int, health_url: str | None = None,
                      name: str = "") -> dict:
    """Node load generators (bench/loadgen/sse_clients.js): each reports when its clients are
    connected (a ready file), is stopped with SIGTERM after the drain time and prints one JSON
    line with counts and a 1 ms histogram, merged here for exact percentiles."""
    if per > NODE_MAX_CLIENTS:
        raise SystemExit(f"{per} clients per load generator: use --loadgens "
                         f">= {-(-args.clients // NODE_MAX_CLIENTS)}")
    # a WebSocket upgrade costs the server several times an SSE request (the handshake, two
    # greenlets per client): ~100 upgrades/s per worker on this box when it is busy
    connect_timeout = (min(10 + args.clients / 250, 90) if args.protocol == "sse"
                       else min(10 + args.clients / 80, 150))
    procs, outputs = [], []
    try:
        for i in range(args.loadgens):
            out = open(tmp / f"lg{i}.json", "wb")
            outputs.append(out)
            procs.append(subprocess.Popen(
                [args.node, str(NODE_LOADGENS[args.protocol]), "--port", str(port), "--path", path,
                 "--clients", str(per), "--ready-file", str(tmp / f"ready{i}"),
                 "--duration", str(round(connect_timeout + args.duration + args.drain + 30))],
                stdout=out))
        started = time.time()
        while time.time() - started < connect_timeout and not all(
                (tmp / f"ready{i}").exists() for i in range(args.loadgens)):
            time.sleep(0.2)
        connect_s = time.time() - started
        time.sleep(2)                # let the server settle, then measure idle memory
        rss_idle = sum(_rss_kib(p) for p in server_pids)
        profile = (str(Path(args.profile) / f"{name or 'server'}.txt")
                   if args.profile and name else None)
        measured = _measure(server_pids, [p.pid for p in procs], produce, args.duration,
                            Probe(port, path, health_url, upgrade=args.protocol == "ws"),
                            profile)
        time.sleep(args.drain)       # late deliveries still count; later ones are missing
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for out in outputs:
            out.close()
    results = [json.loads((tmp / f"lg{i}.json").read_text()) for i in range(args.loadgens)]
    histogram: dict[int, float] = {}
    for result in results:
        for bucket, count in result["histogram_ms"].items():
            histogram[int(bucket)] = histogram.get(int(bucket), 0) + count

    def pct(p: float) -> float:
        total = sum(histogram.values())
        if not total:
            return -1
        seen, rank = 0.0, p * total
        for bucket in sorted(histogram):
            seen += histogram[bucket]
            if seen >= rank:
                return bucket + 0.5      # 1 ms buckets: the midpoint
        return max(histogram) + 0.5

    def total(key: str) -> int:
        return sum(r[key] for r in results)
    return _report(args, per, measured, total("received"), pct(0.5), pct(0.99),
                   connected=total("connected"), errors=total("errors"),
                   rss_growth=rss_idle - rss_before,
                   disconnects=total("disconnects"), connect_s=round(connect_s, 1),
                   max_latency_ms=max(r["max_bucket_ms"] for r in results))


def paced(rate: float, duration: float, send) -> int:
    interval, n, start = 1 / rate, 0, time.time()
    while time.time() - start < duration:
        send(n)
        n += 1
        time.sleep(max(0, start + n * interval - time.time()))
    return n


def bench_evgate(args, direct: bool, tree: Path | None = None, name: str | None = None,
                 handover: bool | None = None) -> dict:
    """evgate's gunicorn, from this checkout or from `tree` (another checkout of evgate, for
    an A/B in one invocation: `git archive <commit> | tar -x -C <dir>`)."""
    from confluent_kafka import Producer

    from tests.support.gateway import GatewayProcess, import_apis
    from tests.support.kafka_broker import create_topic, ensure_broker
    from tests.support.streams import kafka_endpoint, stream_api
    bootstrap = ensure_broker()
    topic = f"bench-fanout-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    run_dir = Path(tempfile.mkdtemp(prefix="evgate-", dir=args.tmp))
    db = f"sqlite:///{run_dir}/evgate.db"
    entrypoint = {"type": "sse"} if args.protocol == "sse" else {
        "type": "websocket",
        "configuration": {"publisher": {"enabled": bool(args.publisher)}}}
    definitions = [stream_api("/fan", [entrypoint], kafka_endpoint(topic))]
    if tree is None:
        import_apis(db, definitions)
    else:   # the other checkout's schema may differ from this one's: its own CLI imports
        from bench.common import import_apis_in
        import_apis_in(tree, db, definitions)
    gw = GatewayProcess(database_url=db, kafka_bootstrap=bootstrap, workers=args.workers,
                        log_path=run_dir / "gw.log",
                        env={"EVGATE_WORKER_CONNECTIONS": str(args.clients + 100),
                             ("EVGATE_SSE_DIRECT_WRITE" if args.protocol == "sse" else
                              "EVGATE_WS_DIRECT_WRITE"): "true" if direct else "false",
                             **({} if handover is None else
                                {("EVGATE_SSE_HANDOVER" if args.protocol == "sse" else
                                  "EVGATE_WS_HANDOVER"): "true" if handover else "false"})})
    import tests.support.gateway as gateway_support
    here = gateway_support.ROOT
    gateway_support.ROOT = tree or here    # gunicorn's cwd: evgate is imported from there
    try:
        gw.start()
    finally:
        gateway_support.ROOT = here
    try:
        time.sleep(1)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})

        def produce(duration):
            def send(_n):
                producer.produce(topic, json.dumps({"ts": time.time()}).encode())
                producer.poll(0)
            n = paced(args.rate, duration, send)
            producer.flush(10)
            return n
        return run_clients(args, gw.port, "/fan", _children(gw.proc.pid), produce,
                           health_url=gw.node_url + "/_node/health/liveness",
                           name=name or ("evgate" if direct else "evgate_without_direct_write"))
    finally:
        gw.stop()
        from confluent_kafka.admin import AdminClient
        AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic])


def bench_baseline(args) -> dict:
    from tests.support.gateway import free_port
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(port),
                               str(args.rate)])
    try:
        time.sleep(1.5)
        def produce(duration):
            import urllib.request
            count = round(duration * args.rate)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/__start?{count}", timeout=10)
            time.sleep(duration)
            return count
        return run_clients(args, port, "/", [server.pid], produce, name="bare")
    finally:
        server.kill()
        server.wait()


def _partial(name: str, result: dict) -> None:
    """Each target's result on stderr as soon as it is known (a run cut by `timeout` keeps
    what it measured)."""
    print(json.dumps({name: {k: v for k, v in result.items()}}), file=sys.stderr, flush=True)


def _raise_open_files(needed: int) -> None:
    """Raise this process's soft open-files limit (inherited by the servers and load
    generators it starts; nothing system-wide): 10,000 clients need more than a common 1024."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    except (ValueError, OSError) as exc:
        print(f"could not raise the open-files limit {soft} to {needed}: {exc}", file=sys.stderr)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--run-python-loadgen":
        _, _, port, path, n, duration, out = sys.argv
        return loadgen("127.0.0.1", int(port), path, int(n), float(duration), out)
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline-server":
        return baseline_server(int(sys.argv[2]), float(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="records per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of producing")
    parser.add_argument("--loadgens", type=int, default=2, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    parser.add_argument("--loadgen", choices=("node", "python"),
                        default="node" if shutil.which("node") else "python",
                        help="SSE client implementation (default: node when on PATH)")
    parser.add_argument("--drain", type=float, default=5.0,
                        help="node: seconds after the last record before the clients stop")
    parser.add_argument("--direct", choices=("true", "false", "both"), default="true",
                        help="EVGATE_SSE_DIRECT_WRITE (EVGATE_WS_DIRECT_WRITE with --protocol "
                             "ws) for the evgate run(s)")
    parser.add_argument("--handover", choices=("true", "false", "both", "both-reversed"),
                        help="EVGATE_SSE_HANDOVER (EVGATE_WS_HANDOVER with --protocol ws) for "
                             "the evgate run(s); both: an A/B in this "
                             "invocation, without the hand-over first (both-reversed: with it "
                             "first); default: the setting's default")
    parser.add_argument("--protocol", choices=("sse", "ws"), default="sse",
                        help="ws: WebSocket clients (Node only; no bare broadcaster for it)")
    parser.add_argument("--publisher", action="store_true",
                        help="ws: the clients' sockets have their publisher enabled too "
                             "(Gravitee's default; they send nothing)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the bare gevent broadcaster")
    parser.add_argument("--ab-tree", metavar="DIR",
                        help="also run evgate from this other checkout first (A/B)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy samples of one evgate worker while producing (raw format)")
    args = parser.parse_args()
    if args.protocol == "ws":
        if args.loadgen != "node":
            parser.error("--protocol ws needs --loadgen node")
        if not (ROOT / "bench" / "loadgen" / "node_modules" / "ws").is_dir():
            parser.error("--protocol ws: run `npm ci --prefix bench/loadgen` first")
        args.no_baseline = True
    _raise_open_files(args.clients + 1000)
    args.node = shutil.which("node")
    if args.loadgen == "node" and args.node is None:
        parser.error("--loadgen node: node is not on PATH")
    args.tmp = tempfile.mkdtemp(prefix="fanout-")
    # `timeout`/SIGTERM: still stop the servers, delete the topic and the temporary files
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report: dict = {"params": {k: v for k, v in vars(args).items()
                                   if k not in ("tmp", "node")}}
        variants = {"true": [True], "false": [False], "both": [True, False]}[args.direct]
        handovers = {None: [None], "true": [True], "false": [False], "both": [False, True],
                     "both-reversed": [True, False]}[args.handover]
        for direct, handover in ((d, h) for d in variants for h in handovers):
            name = "evgate" if direct else "evgate_without_direct_write"
            if handover is not None and args.handover.startswith("both"):
                name += "_handover" if handover else "_without_handover"
            if args.ab_tree:
                report[f"{name}_ab_tree"] = bench_evgate(args, direct, Path(args.ab_tree),
                                                         f"{name}_ab_tree")
                _partial(f"{name}_ab_tree", report[f"{name}_ab_tree"])
            report[name] = bench_evgate(args, direct, name=name, handover=handover)
            _partial(name, report[name])
        if args.no_baseline:
            print(json.dumps(report, indent=2))
            return
        baseline = report["bare_gevent_broadcaster"] = bench_baseline(args)
        for name in ("evgate", "evgate_without_direct_write"):
            if name in report:
                report[f"{name}_over_baseline"] = round(
                    report[name]["deliveries_per_s"] / max(1, baseline["deliveries_per_s"]), 2)
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

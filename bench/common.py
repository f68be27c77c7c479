"""Shared helpers for evgate benchmarks (bench/ingest.py, bench/fanout.py, bench/webhook.py).

A benchmark here compares evgate with a baseline in the same run, on loopback only, and stops
everything it started by PID, also on Ctrl-C or an error:

    with cleanup_on_signals(), contextlib.ExitStack() as stack:
        server = stack.enter_context(GunicornServer("bench.baseline_app:app", workers=2))
        result = run_wrk(server.url + "/ingest", body=b"{...}", duration=10)
        print(result.summary())

- `GunicornServer` runs `gunicorn -c gunicorn.conf.py APP` (the project's own settings: gevent
  worker class, keep-alive, no preload) on a free 127.0.0.1 port with a temporary SQLite DB.
- `run_wrk` drives wrk (Debian's `wrk` package) with a generated Lua script and returns req/s,
  latency percentiles and response counts; `require_wrk` exits 2 with the install hint.
- `import_apis` stores and deploys API definitions the way `evgate apis import` does.
- `KafkaOffsets` counts records on a topic (sum of high watermarks) to check that what the
  gateway acknowledged really landed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

ROOT = Path(__file__).resolve().parents[1]
WRK_INSTALL_HINT = "wrk is not installed: apt-get update && apt-get install -y wrk"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (benchmarks never bind anything else)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so `finally`/`with` blocks stop children."""
    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def machine_description() -> str:
    """nproc, CPU model and RAM: what docs/benchmarks.md records next to every figure."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "? GiB"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{os.cpu_count()} cores, {model}, {mem} RAM, Python {platform.python_version()}"


# -- servers ------------------------------------------------------------------------------------
class GunicornServer:
    """`gunicorn -c gunicorn.conf.py APP` on a free loopback port, stopped by PID.

    The environment carries evgate's settings (EVGATE_*), so the baseline and the gateway run
    under exactly the same gunicorn configuration. Readiness: any HTTP answer on `probe_path`.
    """

    def __init__(self, app: str, *, workers: int = 2, database_url: str | None = None,
                 kafka_bootstrap: str | None = None, env: dict[str, str] | None = None,
                 probe_path: str = "/__bench_probe__", log_dir: str | Path | None = None,
                 root: str | Path = ROOT):
        self.app = app
        self.root = Path(root)  # another checkout (e.g. `git worktree`) to compare against
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.probe_path = probe_path
        self.log_path = Path(log_dir or tempfile.gettempdir()) / f"gunicorn-{self.port}.log"
        self.env = dict(os.environ)
        self.env.update({
            "EVGATE_GATEWAY_BIND": f"127.0.0.1:{self.port}",
            "EVGATE_NODE_BIND": f"127.0.0.1:{free_port()}",  # node endpoints (health, metrics)
            "EVGATE_WORKERS": str(workers),
            "EVGATE_LOG_LEVEL": "warning",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.root),
                                                        os.environ.get("PYTHONPATH")])),
        })
        if database_url:
            self.env["EVGATE_DATABASE_URL"] = database_url
        if kafka_bootstrap:
            self.env["EVGATE_KAFKA_BOOTSTRAP"] = kafka_bootstrap
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self._log: Any = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 30.0) -> "GunicornServer":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(self.root / "gunicorn.conf.py"), self.app],
            cwd=self.root, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.app} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                urllib.request.urlopen(self.url + self.probe_path, timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self  # any HTTP answer means a worker is serving
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn {self.app} did not answer in {timeout}s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """PIDs of the master's children (the workers), read from /proc."""
        if self.proc is None:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError):
            return [int(p) for p in path.read_text().split()]
        return []

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the master (it stops its workers gracefully), SIGKILL after `timeout`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def import_apis(database_url: str, definitions: Iterable[dict[str, Any]]) -> list[dict]:
    """Store, deploy and start definitions (what `evgate apis import` does)."""
    from evgate.repository import open_repository
    from evgate.repository.database import upgrade
    from evgate.services.apis import ApiService
    from evgate.services.principal import LOCAL_OPERATOR
    upgrade(database_url)
    repo = open_repository(database_url)
    try:
        service = ApiService(repo, LOCAL_OPERATOR)
        return [service.import_definition(d) for d in definitions]
    finally:
        repo.dispose()


def import_apis_in(root: str | Path, database_url: str,
                   definitions: Iterable[dict[str, Any]]) -> None:
    """`import_apis` done by another checkout's own CLI (its schema and migrations may differ
    from this tree's: it gets a database of its own)."""
    env = dict(os.environ, EVGATE_DATABASE_URL=database_url,
               PYTHONPATH=os.pathsep.join(filter(None, [str(root),
                                                        os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, definition in enumerate(definitions):
            path = Path(tmp) / f"api-{index}.json"
            path.write_text(json.dumps(definition))
            files.append(str(path))
        for args in (["db", "upgrade"], ["apis", "import", *files]):
            subprocess.run([sys.executable, "-m", "evgate.cli", *args], cwd=str(root), env=env,
                           check=True, stdout=subprocess.DEVNULL)


# -- load generator -----------------------------------------------------------------------------
def require_wrk() -> str:
    """Path of wrk, or exit 2 saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        print(WRK_INSTALL_HINT, file=sys.stderr)
        sys.exit(2)
    return path


_LUA_TEMPLATE = """\
-- generated by bench/common.py: POST a fixed body, print a JSON summary at the end
wrk.method = "POST"
wrk.headers["Content-Type"] = {content_type}
{extra_headers}
local f = assert(io.open({body_path}, "rb"))
wrk.body = f:read("*a")
f:close()
{pacing}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"bytes\\": %d, " ..
    "\\"connect\\": %d, \\"read\\": %d, \\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d, " ..
    "\\"p50_us\\": %d, \\"p90_us\\": %d, \\"p99_us\\": %d, \\"max_us\\": %d}}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


@dataclass
class WrkResult:
    """What one wrk run measured. wrk counts HTTP statuses >= 400 as `status` errors; neither
    evgate nor the baselines answer 3xx, so `ok` (requests - status errors) counts the 2xx."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.errors.get("status", 0)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    def summary(self) -> str:
        errors = ", ".join(f"{k}={v}" for k, v in self.errors.items() if v) or "none"
        return (f"{self.rps:9.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  "
                f"({self.requests} requests in {self.duration_s:.1f}s, errors: {errors})")


# wrk asks `delay()` before each request of a connection: a random pause of mean `gap` ms
# (uniform, so the connections do not fall into step) spreads `rate` requests/s over them
_LUA_PACING = """\
local gap = {gap_ms}
delay = function() return math.random(0, math.floor(2 * gap)) end
"""


def run_wrk(url: str, *, body: bytes, content_type: str = "application/json",
            headers: dict[str, str] | None = None, threads: int = 1, connections: int = 50,
            duration: float = 10.0, timeout: float = 5.0, workdir: str | Path | None = None,
            rate: float | None = None) -> WrkResult:
    """POST `body` to `url` over keep-alive connections for `duration` seconds with wrk: as
    fast as the server answers (a closed loop: every connection sends its next request when
    the answer came), or with `rate`, paced to about that many requests/s in all (each
    connection pauses a random time of mean connections/rate before its next request, so
    the latencies are those of a server that is not saturated; slightly fewer requests than
    `rate` are sent: the pause adds to each answer's time)."""
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"benchmarks target loopback only, not {url}")
    wrk = require_wrk()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="wrk-") as tmp:
        body_path = Path(tmp) / "body"
        body_path.write_bytes(body)
        extra = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
                          for k, v in (headers or {}).items())
        script = Path(tmp) / "post.lua"
        pacing = _LUA_PACING.format(gap_ms=1000.0 * connections / rate) if rate else ""
        script.write_text(_LUA_TEMPLATE.format(content_type=_lua_string(content_type),
                                               extra_headers=extra,
                                               body_path=_lua_string(str(body_path)),
                                               pacing=pacing))
        command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
                   f"--timeout={max(1, round(timeout))}s", "--latency", "-s", str(script), url]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            out, err = proc.communicate(timeout=duration + timeout + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    data = json.loads(line[len("WRK_JSON "):])
    return WrkResult(
        requests=data["requests"], duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        errors={k: data[k] for k in ("connect", "read", "write", "status", "timeout")},
        command=[Path(command[0]).name] + command[1:-3] + ["-s", "post.lua", url]
        + ([f"(paced: {rate:g} req/s)"] if rate else []))


# -- Kafka --------------------------------------------------------------------------------------
class KafkaOffsets:
    """Counts the records on a topic: the sum of its partitions' high watermarks.

    With an idempotent (non-transactional) producer every offset is one record, so the
    difference between two counts is the number of records that landed in between.
    """

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Consumer
        self.topic = topic
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "evgate-bench",
                                   "enable.auto.commit": False})

    def count(self, timeout: float = 10.0) -> int:
        from confluent_kafka import TopicPartition
        metadata = self._consumer.list_topics(self.topic, timeout=timeout)
        partitions = metadata.topics[self.topic].partitions
        return sum(self._consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                        timeout=timeout)[1]
                   for p in partitions)

    def close(self) -> None:
        self._consumer.close()


@contextlib.contextmanager
def temporary_topic(bootstrap: str, topic: str, partitions: int = 1) -> Iterator[str]:
    """Create `topic` for the run and delete it afterwards (the broker is shared)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    try:
        yield topic
    finally:
        with contextlib.suppress(Exception):
            admin.delete_topics([topic])[topic].result(30)


def wait_for_count(offsets: KafkaOffsets, at_least: int, timeout: float = 10.0) -> int:
    """Count again until `at_least` records are there or `timeout` passes (late produces)."""
    deadline = time.monotonic() + timeout
    count = offsets.count()
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        count = offsets.count()
    return count


def add_gateway_args(parser: argparse.ArgumentParser, compare_help: str) -> None:
    """The options every gateway benchmark takes: the broker, the workers, extra evgate
    environment, another checkout to compare with in the same invocation, a JSON copy."""
    parser.add_argument("--bootstrap", default=os.environ.get("EVGATE_KAFKA_BOOTSTRAP",
                                                              "127.0.0.1:9092"),
                        help="Kafka bootstrap servers (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (%(default)s)")
    parser.add_argument("--env", action="append", default=[], metavar="EVGATE_X=V",
                        help="extra environment for the evgate gateway (repeatable)")
    parser.add_argument("--compare-root", metavar="DIR", help=compare_help)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")


def gateway_env(args: argparse.Namespace) -> dict[str, str]:
    """`--env EVGATE_X=V` options as a dict."""
    return dict(item.split("=", 1) for item in args.env)


def check_broker(bootstrap: str) -> None:
    """Exit 2 (with the way to start one) when no Kafka broker answers on `bootstrap`."""
    from confluent_kafka.admin import AdminClient
    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable broker
        print(f"no Kafka broker answers on {bootstrap} ({exc}); start one with `make kafka`",
              file=sys.stderr)
        sys.exit(2)

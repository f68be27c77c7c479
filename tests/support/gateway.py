"""Real evgate servers for integration tests: gunicorn with gevent workers on free ports.

`GatewayProcess` starts `gunicorn -c gunicorn.conf.py wsgi:app` (or the management app) as a
subprocess bound to 127.0.0.1 with its own SQLite file (or a given database URL), waits until
it answers, and stops it by PID. No mocks: requests go through the real worker class, the real
producer bridge and the real broker.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable

from .ports import free_ports

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    return free_ports(1)


def import_apis(database_url: str, definitions: Iterable[dict[str, Any]]) -> list[dict]:
    """Store, deploy and start definitions through the service layer (what `evgate apis
    import` does)."""
    from evgate.repository import open_repository
    from evgate.services.apis import ApiService
    from evgate.services.principal import LOCAL_OPERATOR
    repo = open_repository(database_url)
    try:
        service = ApiService(repo, LOCAL_OPERATOR)
        return [service.import_definition(d) for d in definitions]
    finally:
        repo.dispose()


class GatewayProcess:
    """One gunicorn master (gateway by default) with its workers."""

    def __init__(self, *, database_url: str, kafka_bootstrap: str, workers: int = 2,
                 app: str = "wsgi:app", worker_class: str | None = None,
                 env: dict[str, str] | None = None, log_path: str | Path | None = None):
        # Two consecutive free ports, so the node port can never be the gateway's own (two
        # separate picks can return the same port: nothing is bound between them; seen in CI
        # as the gateway's POST answered by the node app).
        self.port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.node_port = self.port + 1   # /_node/health, /_node/metrics (EVGATE_NODE_BIND)
        self.node_url = f"http://127.0.0.1:{self.node_port}"
        self.database_url = database_url
        self.log_path = Path(log_path or f"/tmp/evgate-test-{self.port}.log")
        self.env = dict(os.environ)
        self.env.update({
            "EVGATE_DATABASE_URL": database_url,
            "EVGATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "EVGATE_GATEWAY_BIND": f"127.0.0.1:{self.port}",
            "EVGATE_MANAGEMENT_BIND": f"127.0.0.1:{self.port}",
            "EVGATE_NODE_BIND": f"127.0.0.1:{self.node_port}",
            "EVGATE_WORKERS": str(workers),
            "EVGATE_SYNC_INTERVAL_MS": "500",
            "EVGATE_LOG_LEVEL": "info",
        })
        if worker_class:
            self.env["EVGATE_WORKER_CLASS"] = worker_class
        self.env.update(env or {})
        self.app = app
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "GatewayProcess":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), self.app],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url + "/__evgate_probe__", timeout=1)
            except urllib.error.HTTPError:
                return self  # any HTTP answer means a worker is serving
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
        finally:
            self._log.close()

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0
                ) -> tuple[int, dict[str, str], bytes]:
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def node_request(self, path: str, timeout: float = 30.0
                     ) -> tuple[int, dict[str, str], bytes]:
        """GET on the node port (health, metrics)."""
        req = urllib.request.Request(self.node_url + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, payload: Any = None, **kwargs: Any):
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        body = None if payload is None else json.dumps(payload)
        status, resp_headers, raw = self.request(method, path, body, headers, **kwargs)
        return status, (json.loads(raw) if raw.strip() else None)

    def __enter__(self) -> "GatewayProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

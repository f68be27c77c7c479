"""A throwaway PostgreSQL server for tests, from Debian's packages, on loopback.

    with PostgresServer() as server:
        url = server.create_database()      # postgresql+psycopg://evgate@127.0.0.1:PORT/db_x

`initdb` and `pg_ctl` come from /usr/lib/postgresql/<version>/bin (Debian's postgresql-15)
or PATH. PostgreSQL refuses to run as root, so under root (CI) the server runs as `nobody`
through `runuser`, in a temporary directory that user owns. Trust authentication on
127.0.0.1 only; fsync off (a test server has nothing to keep). Stopped by `pg_ctl stop`.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from .gateway import free_port

INSTALL_HINT = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                "postgresql-15 (apt-get install -y postgresql-15) — the PostgreSQL tests need "
                "them")


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if os.path.exists("/usr/lib/postgresql/15/bin/initdb"):
        candidates.insert(0, "/usr/lib/postgresql/15/bin/initdb")
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        bindir = Path(candidate).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    raise PostgresUnavailable(INSTALL_HINT)


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.port = free_port()
        self.user = "evgate"
        self.root = Path(tempfile.mkdtemp(prefix="evgate-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb/postgres refuse root
            account = pwd.getpwnam("nobody")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "nobody", "--"]
        os.chmod(self.root, 0o700)

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(self._as + list(args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed ({done.returncode}): "
                                      f"{done.stderr.strip() or done.stdout.strip()}\n"
                                      f"{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> "PostgresServer":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--no-instructions")
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server on its existing data directory (after `start()` then `halt()`)."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.log), "-w", "-t", "60", "start", timeout=90)

    def halt(self) -> None:
        """Stop the server and keep its data (`resume()` brings it back on the same port);
        open connections are cut. For tests of an unreachable repository."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                  "stop", timeout=60)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg
        name = f"db_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} "
                             "dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(self._as + [str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                       "-m", "fast", "-w", "stop"], capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL per test session; fails (never skips) with the install hint.
    A PostgreSQL repository needs EVGATE_SECRETS_KEY (no key file is generated for it): the
    session gets one, inherited by the gunicorn processes the tests start."""
    from evgate.security.sealing import generate_key
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("EVGATE_SECRETS_KEY"):
            patch.setenv("EVGATE_SECRETS_KEY", generate_key())
        yield server
    server.stop()

"""Real Apache Kafka for the test suite, through ``scripts/kafka.sh`` (no mocks).

A pytest session uses one shared broker::

    bootstrap = ensure_broker()          # EVGATE_TEST_KAFKA_BOOTSTRAP, or scripts/kafka.sh start

A test that must see Kafka go away (a POST answering 503 while the broker is down, a consumer
that resumes after a restart) takes a broker of its own, so the shared one never stops under
other tests::

    with private_broker() as (bootstrap, broker):
        ...
        broker.stop()
        ...                              # Kafka is down for this test only
        broker.start()                   # same storage, same topics, same port

Helpers: ``wait_for_metadata``, ``create_topic``, ``consume_all``. All of them talk to the
broker with confluent_kafka.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "scripts" / "kafka.sh"
DEFAULT_PORT = 9092
# A first start on a fresh machine downloads Kafka (~45 MB) with Maven before it starts.
START_TIMEOUT = float(os.environ.get("EVGATE_TEST_KAFKA_START_TIMEOUT", "600"))


class KafkaUnavailable(RuntimeError):
    """The broker could not be started or does not answer metadata requests."""


def _run_script(command: str, port: int, data_dir: str | Path | None = None,
                timeout: float = START_TIMEOUT, check: bool = True,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for name in ("KAFKA_OWNER_PID", "KAFKA_OWNER_CLEANUP"):
        env.pop(name, None)
    env.update(extra_env or {})  # e.g. KAFKA_EXTRA_PROPERTIES, KAFKA_SCRAM_USERS
    env["KAFKA_PORT"] = str(port)
    env.pop("KAFKA_CONTROLLER_PORT", None)  # always port + 1 here
    if data_dir is not None:
        env["KAFKA_DATA_DIR"] = str(data_dir)
    else:
        env.pop("KAFKA_DATA_DIR", None)
    # The readiness check in kafka.sh uses this interpreter (it has confluent_kafka).
    env.setdefault("PYTHON", sys.executable)
    proc = subprocess.run(["bash", str(KAFKA_SH), command], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise KafkaUnavailable(
            f"scripts/kafka.sh {command} (KAFKA_PORT={port}) exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    return proc


def _port() -> int:
    return int(os.environ.get("EVGATE_TEST_KAFKA_PORT", DEFAULT_PORT))


def wait_for_metadata(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until a metadata request to ``bootstrap`` succeeds; KafkaUnavailable otherwise."""
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KafkaUnavailable(f"no metadata from {bootstrap} within {timeout:.0f}s: {last}")
        try:
            admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
            md = admin.list_topics(timeout=max(0.5, min(remaining, 5.0)))
            if md.brokers:
                return
        except Exception as exc:  # KafkaException: transport failure / timeout
            last = exc
        time.sleep(0.2)


def ensure_broker() -> str:
    """The bootstrap address of the session's shared broker, started if needed.

    ``EVGATE_TEST_KAFKA_BOOTSTRAP`` points at an existing Kafka (checked, never started);
    otherwise ``scripts/kafka.sh start`` runs on ``EVGATE_TEST_KAFKA_PORT`` (9092) and reuses
    a broker that already answers there. The broker is left running at the end.
    """
    bootstrap = os.environ.get("EVGATE_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        wait_for_metadata(bootstrap, timeout=30)
        return bootstrap
    port = _port()
    start_broker(port)
    return f"127.0.0.1:{port}"


def start_broker(port: int, data_dir: str | Path | None = None,
                 extra_env: dict[str, str] | None = None) -> str:
    """``scripts/kafka.sh start`` on ``port``; returns its bootstrap once metadata answers."""
    _run_script("start", port, data_dir, extra_env=extra_env)
    bootstrap = f"127.0.0.1:{port}"
    wait_for_metadata(bootstrap, timeout=30)
    return bootstrap


def stop_broker(port: int, data_dir: str | Path | None = None) -> None:
    """``scripts/kafka.sh stop``: stops the broker started from that data dir (by its PID)."""
    _run_script("stop", port, data_dir, timeout=120)


def broker_running(port: int, data_dir: str | Path | None = None) -> bool:
    return _run_script("status", port, data_dir, timeout=60, check=False).returncode == 0


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P such that P and P + 1 are both free now (broker + controller listeners)."""
    from .ports import free_ports
    return free_ports(2, host)


class BrokerHandle:
    """A private broker on its own port and data dir (see ``private_broker``)."""

    def __init__(self, port: int, data_dir: Path, extra_env: dict[str, str] | None = None):
        self.port = port
        self.data_dir = data_dir
        self.bootstrap = f"127.0.0.1:{port}"
        self.extra_env = dict(extra_env or {})

    def start(self) -> str:
        # If this process dies before private_broker's cleanup runs (a test session killed by
        # a timeout), kafka.sh's watchdog stops the broker and deletes its data dir.
        owner = {"KAFKA_OWNER_PID": str(os.getpid()), "KAFKA_OWNER_CLEANUP": "1"}
        return start_broker(self.port, self.data_dir, {**self.extra_env, **owner})

    def stop(self) -> None:
        stop_broker(self.port, self.data_dir)

    def running(self) -> bool:
        return broker_running(self.port, self.data_dir)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    def __repr__(self) -> str:
        return f"BrokerHandle({self.bootstrap}, {self.data_dir})"


@contextlib.contextmanager
def private_broker(port: int | None = None, *, extra_properties: str | Path | None = None,
                   scram_users: str | None = None) -> Iterator[tuple[str, BrokerHandle]]:
    """Start a separate broker on a free port (or ``port``) with a temporary data dir.

    Yields ``(bootstrap, handle)``; ``handle.stop()`` / ``handle.start()`` take this broker down
    and up again (its topics survive). At exit it is stopped and its data dir deleted.
    ``extra_properties`` (a file appended to server.properties) and ``scram_users``
    ("name:password ...") are scripts/kafka.sh's KAFKA_EXTRA_PROPERTIES / KAFKA_SCRAM_USERS
    (tests/support/kafka_security.py builds a SASL/SSL broker with them).
    """
    data_dir = Path(tempfile.mkdtemp(prefix="evgate-kafka-"))
    extra_env = {}
    if extra_properties is not None:
        extra_env["KAFKA_EXTRA_PROPERTIES"] = str(extra_properties)
    if scram_users:
        extra_env["KAFKA_SCRAM_USERS"] = scram_users
    handle = BrokerHandle(port or free_port_pair(), data_dir, extra_env)
    try:
        handle.start()
        yield handle.bootstrap, handle
    finally:
        try:
            handle.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


def create_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0,
                 config: dict[str, str] | None = None) -> None:
    """Create ``name`` and wait until it exists; an existing topic is fine."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    future = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout, request_timeout=timeout)[name]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    # The creation is acknowledged by the controller; wait until this broker's metadata has
    # every partition with a leader, so that producers and consumers see it at once.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if (topic is not None and topic.error is None and len(topic.partitions) >= partitions
                and all(p.leader >= 0 for p in topic.partitions.values())):
            return
        time.sleep(0.1)
    raise KafkaUnavailable(f"topic {name!r} not ready on {bootstrap} within {timeout:.0f}s")


def consume_all(bootstrap: str, topic: str, n: int, timeout: float = 30.0,
                config: dict[str, object] | None = None) -> list:
    """Read the first ``n`` records of ``topic`` from the beginning, as confluent_kafka Messages.

    A new consumer with a unique group id (auto.offset.reset=earliest) so it never disturbs the
    code under test; returns fewer than ``n`` if the timeout runs out first.
    """
    from confluent_kafka import Consumer, KafkaError

    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "group.id": f"evgate-test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 50,
        "log_level": 0,
    }
    conf.update(config or {})
    consumer = Consumer(conf)
    messages: list = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(messages) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for msg in consumer.consume(num_messages=n - len(messages),
                                        timeout=min(remaining, 0.5)):
                err = msg.error()
                if err is None:
                    messages.append(msg)
                elif err.code() not in (KafkaError._PARTITION_EOF,
                                        KafkaError.UNKNOWN_TOPIC_OR_PART):
                    raise RuntimeError(f"consume from {topic!r} failed: {err}")
    finally:
        consumer.close()
    return messages

"""Webhook benchmark: evgate's delivery loops against a bare consume + POST loop.

    .venv/bin/python -m bench.webhook [--records 2000] [--subscriptions 1,10]

For 1 and 10 subscriptions, with local receivers (real HTTP servers on 127.0.0.1, answering
200 at once) and a 4-partition topic per run:

  (a) baseline  2 processes (like evgate's 2 workers), one thread per subscription each: a
                bare confluent-kafka Consumer in the subscription's group (manual commits) and
                a sequential `requests.Session().post` loop, committing after each 2xx
  (b) evgate    a gunicorn gateway with 2 gevent workers running webhook subscriptions
                (at-least-once, per-partition order, signing off, SSRF pinning on)

Phases per run: *drain* - `--records` records are produced before the consumers start, and
deliveries/s is measured from the first to the last receipt; *live* - `--live` records at
`--rate`/s, and produce->receipt p50/p99 is measured. Target (reported, not enforced):
evgate deliveries/s >= 0.7 x baseline. Bounded: loopback only, fixed counts, a deadline per
phase; every process started here is stopped by PID.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

from .common import GunicornServer, cleanup_on_signals, import_apis, machine_description

TARGET_RATIO = 0.7
PARTITIONS = 4


class Sink:
    """Receivers for N subscriptions that note (record number, receipt wall time)."""

    def __init__(self, count: int):
        from tests.support.receiver import Receiver
        self.lock = threading.Lock()
        self.got: list[tuple[int, float, float]] = []  # (n, produced_at, received_at)
        self.receivers = []
        for _ in range(count):
            rx = Receiver()
            rx.default = self._answer
            self.receivers.append(rx.up())

    def _answer(self, _handler: Any, body: bytes) -> int:
        now = time.time()
        record = json.loads(body)
        with self.lock:
            self.got.append((record["n"], record["t"], now))
        return 200

    def reset(self) -> None:
        with self.lock:
            self.got = []
        for rx in self.receivers:
            rx.requests.clear()

    def count(self) -> int:
        return len(self.got)

    def close(self) -> None:
        for rx in self.receivers:
            rx.down()


def produce(bootstrap: str, topic: str, count: int, start: int, rate: float | None = None
            ) -> None:
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1 if rate else 20})
    began = time.monotonic()
    for i in range(start, start + count):
        if rate:
            delay = began + (i - start) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        body = json.dumps({"n": i, "t": time.time(), "pad": "x" * 200}).encode()
        producer.produce(topic, body, partition=i % PARTITIONS)
        producer.poll(0)
    producer.flush(30)


def wait_count(sink: Sink, want: int, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if sink.count() >= want:
            return True
        time.sleep(0.05)
    return sink.count() >= want


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- baseline --------------------------------------------------------------------------------
def _baseline_process(bootstrap: str, topic: str, groups: list[str], urls: list[str],
                      stop: Any) -> None:
    import requests
    from confluent_kafka import Consumer, TopicPartition

    def loop(group: str, url: str) -> None:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "fetch.wait.max.ms": 100, "session.timeout.ms": 10000})
        consumer.subscribe([topic])
        session = requests.Session()
        try:
            while not stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                while not stop.is_set():
                    try:
                        if session.post(url, data=msg.value(), timeout=(3, 10)).ok:
                            break
                    except requests.RequestException:
                        time.sleep(0.1)
                consumer.commit(offsets=[TopicPartition(msg.topic(), msg.partition(),
                                                        msg.offset() + 1)], asynchronous=True)
        finally:
            consumer.close()

    threads = [threading.Thread(target=loop, args=(g, u), daemon=True)
               for g, u in zip(groups, urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Baseline:
    def __init__(self, bootstrap: str, topic: str, urls: list[str]):
        groups = [f"bench-base-{uuid.uuid4().hex[:8]}" for _ in urls]
        ctx = multiprocessing.get_context("spawn")
        self.stop_event = ctx.Event()
        self.procs = [ctx.Process(target=_baseline_process,
                                  args=(bootstrap, topic, groups, urls, self.stop_event))
                      for _ in range(2)]

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def stop(self) -> None:
        self.stop_event.set()
        for proc in self.procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# -- evgate ----------------------------------------------------------------------------------
def evgate_api(topic: str) -> dict:
    return {
        "id": str(uuid.uuid4()), "name": f"bench webhook {topic}", "type": "async",
        "definitionVersion": "4.0.0",
        "listeners": [{"type": "subscription", "entrypoints": [{
            "type": "webhook", "qos": "at-least-once",
            "configuration": {"http": {"maxConcurrentConnections": 4}}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [{
            "name": "default", "type": "kafka",
            "configuration": {"topics": [topic], "consumer": {"autoOffsetReset": "earliest"}}}]}],
        "plans": [{"id": str(uuid.uuid4()), "name": "push", "status": "published",
                   "security": {"type": "subscription"}}],
    }


def run(system: str, subscriptions: int, args: argparse.Namespace, server: Any,
        database_url: str) -> dict[str, Any]:
    from tests.support.kafka_broker import create_topic
    topic = f"bench-wh-{system}-{subscriptions}-{uuid.uuid4().hex[:6]}"
    create_topic(args.bootstrap, topic, partitions=PARTITIONS)
    sink = Sink(subscriptions)
    baseline = None
    repo = None
    try:
        produce(args.bootstrap, topic, args.records, 0)
        want = args.records * subscriptions
        if system == "baseline":
            baseline = Baseline(args.bootstrap, topic, [rx.url for rx in sink.receivers])
            baseline.start()
        else:
            from evgate.repository import open_repository
            api = import_apis(database_url, [evgate_api(topic)])[0]
            repo = open_repository(database_url, migrate=False)
            for rx in sink.receivers:
                repo.subscriptions.insert({
                    "id": str(uuid.uuid4()), "api_id": api["id"],
                    "plan_id": api["plans"][0]["id"], "application_id": "bench",
                    "status": "ACCEPTED",
                    "configuration": {"entrypointId": "webhook", "callbackUrl": rx.url}})
        drained = wait_count(sink, want, args.deadline)
        got = list(sink.got)
        first = min(g[2] for g in got) if got else 0.0
        last = max(g[2] for g in got) if got else 0.0
        drain_rate = (len(got) - 1) / (last - first) if len(got) > 1 and last > first else 0.0
        sink.reset()
        produce(args.bootstrap, topic, args.live, args.records, rate=args.rate)
        lived = wait_count(sink, args.live * subscriptions, args.deadline)
        latencies = [(received - produced) * 1000 for _n, produced, received in sink.got]
        return {"system": system, "subscriptions": subscriptions, "deliveries": len(got),
                "complete": drained and lived, "deliveries_per_s": round(drain_rate),
                "p50_ms": round(percentile(latencies, 0.50), 1),
                "p99_ms": round(percentile(latencies, 0.99), 1)}
    finally:
        if baseline is not None:
            baseline.stop()
        if repo is not None:
            from evgate.repository.tables import subscriptions as table
            from sqlalchemy import update
            with repo.write() as conn:  # stop this run's loops before the next run
                conn.execute(update(table).values(status="CLOSED"))
            repo.dispose()
            time.sleep(2)
        sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("EVGATE_KAFKA_BOOTSTRAP",
                                                              "127.0.0.1:9092"))
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--live", type=int, default=400)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--subscriptions", default="1,10")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.subscriptions.split(",")]
    print(machine_description())
    results = []
    with cleanup_on_signals(), contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="evgate-bench-wh-"))
        database_url = f"sqlite:///{tmp}/bench.db"
        from evgate.repository import open_repository
        open_repository(database_url).dispose()
        server = stack.enter_context(GunicornServer(
            "wsgi:app", workers=2, database_url=database_url, kafka_bootstrap=args.bootstrap,
            env={"EVGATE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
                 "EVGATE_SYNC_INTERVAL_MS": "500"}, log_dir=tmp))
        for count in counts:
            for system in ("baseline", "evgate"):
                result = run(system, count, args, server, database_url)
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| subscriptions | system | deliveries/s (drain) | p50 ms | p99 ms (live) |")
    print("|---|---|---|---|---|")
    ok = True
    for count in counts:
        base = next(r for r in results if r["subscriptions"] == count
                    and r["system"] == "baseline")
        ours = next(r for r in results if r["subscriptions"] == count and r["system"] == "evgate")
        ok = ok and base["complete"] and ours["complete"]
        for r in (base, ours):
            print(f"| {count} | {r['system']} | {r['deliveries_per_s']} | {r['p50_ms']} | "
                  f"{r['p99_ms']} |")
        ratio = ours["deliveries_per_s"] / base["deliveries_per_s"] if base[
            "deliveries_per_s"] else float("nan")
        print(f"| {count} | ratio evgate/baseline | {ratio:.2f} (target >= {TARGET_RATIO}) "
              "| | |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

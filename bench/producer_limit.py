"""What the Kafka client and broker alone allow for batch ingestion: the baseline (p) of
bench/ingest.py's batch phase.

    .venv/bin/python -m bench.producer_limit --topic T [--seconds 5] [--in-flight 4000]

One confluent-kafka Producer with the settings evgate's producer uses (acks=all, idempotence,
linger.ms and compression from EVGATE_KAFKA_PRODUCER_LINGER_MS / _COMPRESSION, defaults 1 and
lz4), a native thread serving delivery reports with `poll()`, and a loop producing 1 KiB JSON
records (bench.ingest's bodies) as fast as the broker acknowledges them, with at most
--in-flight records unacknowledged (4,000: the batch phase's 4 connections x 1,000 records).
No HTTP, no parsing, no response: a gateway on the same cores cannot beat it. It runs in its
own process (the benchmark's process must not lend it or take from it a GIL) and prints one
JSON line: records acknowledged per second and the process's CPU per record (all threads,
librdkafka's included). Exit status 1 when a record was not acknowledged.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from confluent_kafka import Producer

from bench.ingest import json_body


def process_cpu_s() -> float:
    """User + system CPU seconds of this process, every thread."""
    times = os.times()
    return times.user + times.system


def run(bootstrap: str, topic: str, seconds: float, in_flight: int, size: int) -> dict:
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": int(os.environ.get("EVGATE_KAFKA_PRODUCER_LINGER_MS", "1")),
        "compression.type": os.environ.get("EVGATE_KAFKA_PRODUCER_COMPRESSION", "lz4"),
        "queue.buffering.max.messages": 200000})
    values = [json_body(size, index) for index in range(1000)]
    acked = failed = 0
    lock = threading.Lock()
    running = True

    def on_delivery(err, _msg) -> None:
        nonlocal acked, failed
        with lock:
            if err is None:
                acked += 1
            else:
                failed += 1

    def poller() -> None:
        while running or len(producer):
            producer.poll(0.05)

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    sent = 0
    started_cpu, started = process_cpu_s(), time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for value in values:
            producer.produce(topic, value, None, -1, on_delivery)
        sent += len(values)
        while sent - acked - failed > in_flight:
            time.sleep(0.0005)
    while acked + failed < sent and time.perf_counter() < deadline + 30:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    cpu = process_cpu_s() - started_cpu
    running = False
    thread.join(timeout=35)
    return {"records": sent, "acked": acked, "failed": failed,
            "records_per_s": round(acked / elapsed), "seconds": round(elapsed, 2),
            "cpu_us_per_record": round(cpu * 1e6 / max(1, acked), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.producer_limit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=4000)
    parser.add_argument("--record-size", type=int, default=1024)
    args = parser.parse_args(argv)
    result = run(args.bootstrap, args.topic, args.seconds, args.in_flight, args.record_size)
    print(json.dumps(result), flush=True)
    return 1 if result["failed"] or result["acked"] < result["records"] else 0


if __name__ == "__main__":
    sys.exit(main())

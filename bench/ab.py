"""Interleaved A/B of ingestion: this tree against another checkout, in one invocation.

    .venv/bin/python -m bench.ab --against /path/to/other/checkout [--rounds 4 --duration 6]

Both gateways run at once (same gunicorn.conf.py settings, same worker count, same broker,
each its own SQLite file and the same http-post -> kafka API as bench/ingest.py); wrk runs
alternate between them, round after round (A, B, B, A, A, B, ...), so that the load other
processes put on a shared machine falls on both alike. It prints each run and the medians of
req/s and latency, plus the worker CPU per request (user+system of every worker thread,
librdkafka's included, read from /proc). Only ratios within one run mean anything on a busy
box. Everything binds 127.0.0.1; every process started here is stopped by PID.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from .common import (ROOT, GunicornServer, check_broker, cleanup_on_signals, import_apis,
                     machine_description, require_wrk, run_wrk, temporary_topic)
from .ingest import api_definition, json_body


def _cpu_seconds(master_pid: int) -> float:
    """user+system CPU of the master's children (the workers), all their threads."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="the other checkout (A)")
    parser.add_argument("--bootstrap", default=os.environ.get("EVGATE_KAFKA_BOOTSTRAP",
                                                              "127.0.0.1:9092"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4, help="wrk runs per side")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args(argv)
    require_wrk()
    check_broker(args.bootstrap)
    sides = {"A": Path(args.against).resolve(), "B": ROOT}
    body = json_body(1024)
    print(f"evgate ingestion A/B\nmachine: {machine_description()}\nA = {sides['A']}\n"
          f"B = {sides['B']}\n{args.workers} workers each; wrk -c{args.connections} "
          f"{args.rounds} x {args.duration:g}s per side, interleaved", flush=True)
    topic = f"bench-ab-{uuid.uuid4().hex[:10]}"
    runs: dict[str, list[tuple[float, float, float, float]]] = {"A": [], "B": []}
    with cleanup_on_signals(), tempfile.TemporaryDirectory(prefix="evgate-ab-") as tmp, \
            contextlib.ExitStack() as stack:
        stack.enter_context(temporary_topic(args.bootstrap, topic, 1))
        servers = {}
        for side, root in sides.items():
            url = f"sqlite:///{tmp}/{side}.db"
            import_apis(url, [api_definition(str(uuid.uuid4()), "/bench/ingest", topic,
                                             args.bootstrap)])
            servers[side] = stack.enter_context(GunicornServer(
                "wsgi:app", workers=args.workers, database_url=url,
                kafka_bootstrap=args.bootstrap, log_dir=tmp, root=root))
        for side, server in servers.items():
            run_wrk(server.url + "/bench/ingest", body=body, connections=args.connections,
                    duration=args.warmup)
        order = []
        for index in range(args.rounds):
            order += ["A", "B"] if index % 2 == 0 else ["B", "A"]
        for side in order:
            server = servers[side]
            cpu_before = _cpu_seconds(server.pid)
            result = run_wrk(server.url + "/bench/ingest", body=body,
                             connections=args.connections, duration=args.duration)
            cpu = _cpu_seconds(server.pid) - cpu_before
            if result.errors.get("status") or result.socket_errors:
                print(f"{side}: errors {result.errors}", file=sys.stderr)
            per_request_us = cpu / result.ok * 1e6 if result.ok else float("nan")
            runs[side].append((result.rps, result.p50_ms, result.p99_ms, per_request_us))
            print(f"  {side}: {result.summary()}  worker CPU {per_request_us:.0f} us/request",
                  flush=True)
    print("\nmedians      req/s    p50 ms   p99 ms   worker CPU us/request")
    for side in ("A", "B"):
        columns = list(zip(*runs[side]))
        rps, p50, p99, cpu = (statistics.median(c) for c in columns)
        print(f"  {side}       {rps:7.0f}   {p50:6.2f}   {p99:6.2f}   {cpu:6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

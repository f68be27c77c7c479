"""Ingestion benchmark: evgate's HTTP POST -> Kafka path against a bare Flask route.

    .venv/bin/python -m bench.ingest            (make bench)

In one invocation, with the same load (wrk, keep-alive connections, POST of a 1 KiB JSON body)
and the same gunicorn configuration (gunicorn.conf.py: gevent worker class, N workers):

  (a) baseline  bench/baseline_app.py: a Flask route that reads the body and answers 202
  (b) evgate    an http-post API whose kafka endpoint produces with acks=all + idempotence to
                the real broker, 202 only once the broker acknowledged
  (c) batch     the http-post entrypoint's `batch: true` option, NDJSON and JSON-array bodies
                of --batch-size records each

It prints req/s, p50/p99 for (a) and (b), the ratio b/a, batch records/s, and checks on the
topic (sum of high watermarks before/after) that every acknowledged record really landed.
Exit status: 0 ok, 1 a record count or status check failed, 2 wrk or the broker is missing.
The targets (ratio >= 0.75, batch >= 100k records/s) are reported, not enforced.
Everything binds and targets 127.0.0.1; every process started here is stopped by PID.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .common import (GunicornServer, KafkaOffsets, WrkResult, cleanup_on_signals, import_apis,
                     machine_description, require_wrk, run_wrk, temporary_topic, wait_for_count)

RATIO_TARGET = 0.75
BATCH_TARGET = 100_000


def json_body(size: int, index: int = 0) -> bytes:
    """A JSON object of exactly `size` bytes (for size >= 60), padded with random hex so that
    compression sees realistic (~50 %) rather than perfect redundancy."""
    head = json.dumps({"id": index, "sensor": "bench", "ts": 1700000000000 + index,
                       "pad": ""}, separators=(",", ":"))
    pad = max(0, size - len(head))
    return (head[:-2] + random.Random(index).randbytes(pad).hex()[:pad] + '"}').encode()


def api_definition(api_id: str, path: str, topic: str, bootstrap: str, *,
                   batch: bool = False) -> dict[str, Any]:
    """An http-post -> kafka API, keyless, like examples/apis/data-ingestion.json."""
    return {
        "id": api_id, "name": f"bench {path}", "apiVersion": "1.0",
        "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post",
                                        "configuration": {"batch": batch}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [{
            "name": "default", "type": "kafka", "weight": 1, "inheritConfiguration": False,
            "configuration": {"bootstrapServers": bootstrap, "topics": [topic],
                              "consumer": {"enabled": False}, "producer": {"enabled": True}}}]}],
        "flows": [],
        "plans": [{"id": str(uuid.uuid4()), "name": "Keyless", "security": {"type": "key-less"},
                   "status": "published"}],
    }


@dataclass
class Landed:
    """Records counted on the topic for one measured phase versus the 2xx wrk saw."""

    expected: int          # 2xx responses x records per request
    landed: int
    slack: int             # requests wrk cut off at the end (sent, answered after it stopped)

    @property
    def ok(self) -> bool:
        # Every acknowledged record landed; extra ones only from requests still in flight when
        # wrk stopped counting (at most one per connection, plus ones wrk timed out).
        return self.expected <= self.landed <= self.expected + self.slack

    def text(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        return (f"records landed {self.landed}, 2xx x records/request {self.expected} "
                f"(allowed extra <= {self.slack} in flight at the end): {verdict}")


def measured(offsets: KafkaOffsets | None, url: str, body: bytes, args: argparse.Namespace, *,
             content_type: str = "application/json", connections: int, per_request: int = 1,
             label: str) -> tuple[WrkResult, Landed | None]:
    """Warm up, then one measured wrk run; with `offsets`, count what landed on the topic."""
    print(f"-- {label}: warm-up {args.warmup}s", flush=True)
    run_wrk(url, body=body, content_type=content_type, threads=args.threads,
            connections=connections, duration=args.warmup)
    before = None
    if offsets is not None:
        time.sleep(1.0)  # let warm-up requests cut off by wrk settle
        before = offsets.count()
    print(f"-- {label}: measuring {args.duration}s", flush=True)
    result = run_wrk(url, body=body, content_type=content_type, threads=args.threads,
                     connections=connections, duration=args.duration)
    print(f"   {result.summary()}", flush=True)
    if offsets is None or before is None:
        return result, None
    expected = result.ok * per_request
    slack = (connections + result.errors["status"] + result.errors["timeout"]) * per_request
    time.sleep(1.0)
    landed = wait_for_count(offsets, before + expected, timeout=10) - before
    check = Landed(expected, landed, slack)
    print(f"   {check.text()}", flush=True)
    return result, check


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=os.environ.get("EVGATE_KAFKA_BOOTSTRAP",
                                                              "127.0.0.1:9092"),
                        help="Kafka bootstrap servers (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (%(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (%(default)s)")
    parser.add_argument("--connections", type=int, default=50,
                        help="wrk keep-alive connections for (a)/(b) (%(default)s)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per phase")
    parser.add_argument("--body-size", type=int, default=1024, help="JSON body bytes (1 KiB)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per batch")
    parser.add_argument("--batch-record-size", type=int, default=1024,
                        help="bytes per batch record (%(default)s)")
    parser.add_argument("--batch-connections", type=int, default=4,
                        help="wrk connections for the batch phases (%(default)s)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic")
    parser.add_argument("--skip-baseline", action="store_true", help="only measure evgate")
    parser.add_argument("--skip-batch", action="store_true", help="no batch phases")
    parser.add_argument("--env", action="append", default=[], metavar="EVGATE_X=V",
                        help="extra environment for the evgate gateway (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    return parser.parse_args(argv)


def check_broker(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient
    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable broker
        print(f"no Kafka broker answers on {bootstrap} ({exc}); start one with `make kafka`",
              file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    check_broker(args.bootstrap)
    extra_env = dict(item.split("=", 1) for item in args.env)
    body = json_body(args.body_size)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_description(), "workers": args.workers,
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration:g}s "
               f"(warm-up {args.warmup:g}s)",
        "body_bytes": len(body), "gateway_env": extra_env}
    print(f"evgate ingestion benchmark, {results['date']}\nmachine: {results['machine']}\n"
          f"gunicorn.conf.py, {args.workers} workers; wrk {results['wrk']}, POST "
          f"{len(body)} B JSON; broker {args.bootstrap}", flush=True)
    failures: list[str] = []
    topic = f"bench-ingest-{uuid.uuid4().hex[:10]}"

    with cleanup_on_signals(), tempfile.TemporaryDirectory(prefix="evgate-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        database_url = f"sqlite:///{tmp}/evgate.db"
        baseline = None
        if not args.skip_baseline:
            with GunicornServer("bench.baseline_app:app", workers=args.workers,
                                database_url=database_url, log_dir=tmp) as server:
                baseline, _ = measured(None, server.url + "/ingest", body, args,
                                       connections=args.connections, label="(a) baseline")

        stack.enter_context(temporary_topic(args.bootstrap, topic, args.partitions))
        offsets = KafkaOffsets(args.bootstrap, topic)
        stack.callback(offsets.close)
        import_apis(database_url, [
            api_definition(str(uuid.uuid4()), "/bench/ingest", topic, args.bootstrap),
            api_definition(str(uuid.uuid4()), "/bench/batch", topic, args.bootstrap,
                           batch=True)])
        server = stack.enter_context(GunicornServer(
            "wsgi:app", workers=args.workers, database_url=database_url,
            kafka_bootstrap=args.bootstrap, env=extra_env, log_dir=tmp))
        gateway, single = measured(offsets, server.url + "/bench/ingest", body, args,
                                   connections=args.connections, label="(b) evgate")
        if not single.ok:
            failures.append("single ingestion: " + single.text())
        if gateway.errors["status"] or gateway.socket_errors:
            failures.append(f"single ingestion: errors {gateway.errors}")
        results["evgate"] = _as_dict(gateway, single)
        if baseline is not None:
            results["baseline"] = _as_dict(baseline, None)
            results["ratio"] = round(gateway.rps / baseline.rps, 3)

        if not args.skip_batch:
            records = [json_body(args.batch_record_size, i) for i in range(args.batch_size)]
            bodies = {"ndjson": (b"\n".join(records) + b"\n", "application/x-ndjson"),
                      "json-array": (b"[" + b",".join(records) + b"]", "application/json")}
            for name, (batch_body, content_type) in bodies.items():
                result, check = measured(
                    offsets, server.url + "/bench/batch", batch_body, args,
                    content_type=content_type, connections=args.batch_connections,
                    per_request=args.batch_size,
                    label=f"(c) batch {name}, {args.batch_size} x {args.batch_record_size} B")
                if not check.ok:
                    failures.append(f"batch {name}: " + check.text())
                if result.errors["status"] or result.socket_errors:
                    failures.append(f"batch {name}: errors {result.errors}")
                results[f"batch_{name}"] = dict(_as_dict(result, check),
                                                records_per_s=round(result.ok * args.batch_size
                                                                    / result.duration_s))
        if failures:
            print("\ngateway log (tail):\n" + server.log_tail(), file=sys.stderr)

    _print_summary(results, failures)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(dict(results, failures=failures), handle, indent=2)
    return 1 if failures else 0


def _as_dict(result: WrkResult, check: Landed | None) -> dict[str, Any]:
    data = {"requests": result.requests, "ok": result.ok, "rps": round(result.rps),
            "p50_ms": round(result.p50_ms, 2), "p90_ms": round(result.p90_ms, 2),
            "p99_ms": round(result.p99_ms, 2), "errors": result.errors,
            "wrk": " ".join(result.command)}
    if check is not None:
        data["landed"] = check.landed
        data["expected"] = check.expected
    return data


def _print_summary(results: dict[str, Any], failures: list[str]) -> None:
    print("\n== results ==")
    for key, label in (("baseline", "(a) bare Flask 202"), ("evgate", "(b) evgate -> Kafka")):
        if key in results:
            r = results[key]
            landed = f"  landed {r['landed']} / 2xx {r['ok']}" if "landed" in r else ""
            print(f"{label:22} {r['rps']:8d} req/s  p50 {r['p50_ms']:6.2f} ms  "
                  f"p99 {r['p99_ms']:6.2f} ms{landed}")
    if "ratio" in results:
        verdict = "meets" if results["ratio"] >= RATIO_TARGET else "BELOW"
        print(f"ratio b/a              {results['ratio']:.3f}  ({verdict} target {RATIO_TARGET})")
    for name in ("ndjson", "json-array"):
        r = results.get(f"batch_{name}")
        if r:
            verdict = "meets" if r["records_per_s"] >= BATCH_TARGET else "BELOW"
            print(f"batch {name:16} {r['records_per_s']:8d} records/s  ({r['rps']} req/s, "
                  f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; landed {r['landed']} / "
                  f"expected {r['expected']}; {verdict} target {BATCH_TARGET})")
    for failure in failures:
        print(f"FAIL: {failure}")


if __name__ == "__main__":
    sys.exit(main())

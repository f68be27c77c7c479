"""Ingestion benchmark: evgate's HTTP POST -> Kafka path against a bare Flask route and a
minimal acknowledged-produce route.

    .venv/bin/python -m bench.ingest            (make bench)
    .venv/bin/python -m bench.ingest --matrix   (cost growth: body sizes x connections)

In one invocation, with the same load (wrk, keep-alive connections, POST of a 1 KiB JSON body)
and the same gunicorn configuration (gunicorn.conf.py: gevent worker class, N workers), all
servers up at once and measured in interleaved rounds (--rounds; medians reported):

  (a) bare      bench/baseline_app.py: a Flask route that reads the body and answers 202
  (m) minimal   bench/minimal_app.py: ~30 lines producing with acks=all + idempotence + lz4,
                202 once acked (the stack's limit with evgate's safety, issue 11)
  (b) evgate    an http-post API whose kafka endpoint produces with acks=all + idempotence to
                the real broker, 202 only once the broker acknowledged
  (c) batch     the http-post entrypoint's `batch: true` option, NDJSON and JSON-array bodies
                of --batch-size records each
  (p) producer  beside each batch run, bench/producer_limit.py: a bare Producer with the
                gateway's producer settings, no HTTP, as many records in flight as the batch
                connections carry (what the Kafka client and broker alone allow on these
                cores; --skip-producer-limit: none)

It prints req/s, p50/p99 and worker CPU per request (from /proc, all threads) for (a), (m)
and (b), the ratios evgate/minimal and evgate/bare, batch records/s, and checks on each
producing route's topic (sum of high watermarks before/after) that every acknowledged record
really landed. The saturated rounds are followed by the same rounds paced to --paced-rate
requests/s (default half of the minimal route's): wrk's closed loop keeps every server
saturated, so their p99 there is their queue; the paced p99 is the latency figure.
Exit status: 0 ok, 1 a record count or status check failed, 2 wrk or the broker is missing.
The targets (evgate/minimal >= 0.9, evgate's paced p99 <= 50 ms, batch >= 100k records/s)
are reported, not enforced.
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
import statistics
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import (ROOT, GunicornServer, KafkaOffsets, WrkResult, add_gateway_args,
                     check_broker, cleanup_on_signals, gateway_env, import_apis,
                     import_apis_in, machine_description, require_wrk, run_wrk,
                     temporary_topic, wait_for_count)

RATIO_TARGET = 0.9          # evgate / minimal route (issue 11)
BATCH_TARGET = 100_000
P99_TARGET_MS = 50          # evgate p99 at 50 connections, paced (issue 11)


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


def worker_cpu_s(server: GunicornServer) -> float:
    """CPU seconds (user + system, every thread: librdkafka's included) of the server's
    workers so far, from /proc/<pid>/task/*/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in server.worker_pids():
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / tick


@dataclass
class Target:
    """One server measured in the interleaved rounds; `offsets` for a producing route."""

    key: str
    label: str
    server: GunicornServer
    path: str
    offsets: KafkaOffsets | None = None


@dataclass
class Round:
    result: WrkResult
    check: Landed | None
    cpu_us: float          # worker CPU per request


def warm_up(target: Target, body: bytes, args: argparse.Namespace, *, connections: int,
            content_type: str = "application/json", seconds: float | None = None) -> None:
    print(f"-- {target.label}: warm-up {seconds or args.warmup:g}s", flush=True)
    run_wrk(target.server.url + target.path, body=body, content_type=content_type,
            threads=args.threads, connections=connections, duration=seconds or args.warmup)


def measure_round(target: Target, body: bytes, args: argparse.Namespace, *, connections: int,
                  duration: float, content_type: str = "application/json",
                  per_request: int = 1, settle: float = 1.0,
                  rate: float | None = None) -> Round:
    """One measured wrk run; with `target.offsets`, count what landed on its topic."""
    before = None
    if target.offsets is not None:
        time.sleep(settle)  # let requests cut off by the previous run settle
        before = target.offsets.count()
    cpu_before = worker_cpu_s(target.server)
    result = run_wrk(target.server.url + target.path, body=body, content_type=content_type,
                     threads=args.threads, connections=connections, duration=duration,
                     rate=rate)
    cpu_us = (worker_cpu_s(target.server) - cpu_before) * 1e6 / max(1, result.requests)
    print(f"   {target.label:24} {result.summary()}  cpu {cpu_us:5.0f} us/req", flush=True)
    if target.offsets is None or before is None:
        return Round(result, None, cpu_us)
    expected = result.ok * per_request
    slack = (connections + result.errors["status"] + result.errors["timeout"]) * per_request
    time.sleep(settle)
    landed = wait_for_count(target.offsets, before + expected, timeout=10) - before
    check = Landed(expected, landed, slack)
    if not check.ok:
        print(f"   {target.label}: {check.text()}", flush=True)
    return Round(result, check, cpu_us)


def interleaved(targets: list[Target], body: bytes, args: argparse.Namespace, *,
                connections: int, rounds: int, duration: float, warmup: float,
                settle: float = 1.0, rate: float | None = None) -> dict[str, list[Round]]:
    """Warm each target up (unless `warmup` is 0), then `rounds` rounds of one wrk run per
    target, in turn; with `rate`, paced (`run_wrk`)."""
    if warmup:
        for target in targets:
            warm_up(target, body, args, connections=connections, seconds=warmup)
    runs: dict[str, list[Round]] = {t.key: [] for t in targets}
    for number in range(1, rounds + 1):
        pace = f", paced to {rate:.0f} req/s" if rate else ""
        print(f"-- round {number}/{rounds}: {duration:g}s each, {connections} connections, "
              f"{len(body)} B{pace}", flush=True)
        order = targets if number % 2 else list(reversed(targets))
        for target in order:
            runs[target.key].append(measure_round(target, body, args, connections=connections,
                                                  duration=duration, settle=settle, rate=rate))
    return runs


def paced_rate(args: argparse.Namespace, results: dict[str, Any]) -> float:
    """The offered load of the paced rounds: --paced-rate, or by default half of what the
    minimal route reached saturated in this invocation (0: no paced rounds)."""
    if args.paced_rate is not None:
        return max(0.0, args.paced_rate)
    minimal = results.get("minimal")
    return round(minimal["rps"] / 2) if minimal else 0.0


def summarise(rounds: list[Round]) -> dict[str, Any]:
    """Medians over the rounds, every run's figures, and the landed check summed."""
    data: dict[str, Any] = {
        "rps": round(statistics.median(r.result.rps for r in rounds)),
        "p50_ms": round(statistics.median(r.result.p50_ms for r in rounds), 2),
        "p99_ms": round(statistics.median(r.result.p99_ms for r in rounds), 2),
        "cpu_us_per_request": round(statistics.median(r.cpu_us for r in rounds)),
        "ok": sum(r.result.ok for r in rounds),
        "errors": {k: sum(r.result.errors[k] for r in rounds) for k in rounds[0].result.errors},
        "runs": [{"rps": round(r.result.rps), "p50_ms": round(r.result.p50_ms, 2),
                  "p99_ms": round(r.result.p99_ms, 2), "cpu_us": round(r.cpu_us)}
                 for r in rounds],
        "wrk": " ".join(rounds[0].result.command)}
    checks = [r.check for r in rounds if r.check is not None]
    if checks:
        data["landed"] = sum(c.landed for c in checks)
        data["expected"] = sum(c.expected for c in checks)
        data["landed_ok"] = all(c.ok for c in checks)
    return data


def check_failures(name: str, rounds: list[Round]) -> list[str]:
    failures = []
    for number, r in enumerate(rounds, 1):
        if r.check is not None and not r.check.ok:
            failures.append(f"{name} round {number}: {r.check.text()}")
        if r.result.errors["status"] or r.result.socket_errors:
            failures.append(f"{name} round {number}: errors {r.result.errors}")
    return failures


def measured(target: Target, body: bytes, args: argparse.Namespace, *,
             content_type: str = "application/json", connections: int, per_request: int = 1,
             label: str) -> Round:
    """Warm up, then one measured wrk run (the batch phases)."""
    print(f"-- {label}: warm-up {args.warmup}s", flush=True)
    run_wrk(target.server.url + target.path, body=body, content_type=content_type,
            threads=args.threads, connections=connections, duration=args.warmup)
    print(f"-- {label}: measuring {args.duration}s", flush=True)
    measured_round = measure_round(target, body, args, connections=connections,
                                   duration=args.duration, content_type=content_type,
                                   per_request=per_request)
    if measured_round.check is not None:
        print(f"   {measured_round.check.text()}", flush=True)
    return measured_round


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gateway_args(parser, "also run the evgate of another checkout (e.g. `git archive` of "
                             "the commit before a change) as (b0), in the same rounds")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (%(default)s)")
    parser.add_argument("--connections", type=int, default=50,
                        help="wrk keep-alive connections for (a)/(b) (%(default)s)")
    parser.add_argument("--duration", type=float, default=5,
                        help="seconds per measured run (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of (a), (m), (b); medians (%(default)s)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per target")
    parser.add_argument("--body-size", type=int, default=1024, help="JSON body bytes (1 KiB)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per batch")
    parser.add_argument("--batch-record-size", type=int, default=1024,
                        help="bytes per batch record (%(default)s)")
    parser.add_argument("--batch-connections", type=int, default=4,
                        help="wrk connections for the batch phases (%(default)s)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic")
    parser.add_argument("--skip-baseline", action="store_true", help="no bare Flask route (a)")
    parser.add_argument("--skip-minimal", action="store_true",
                        help="no minimal produce route (m)")
    parser.add_argument("--matrix", action="store_true",
                        help="instead of (a)-(c): the cost-growth matrix, evgate beside the "
                             "minimal route, for each --matrix-sizes at 50 connections and "
                             "each --matrix-connections at 1 KiB")
    parser.add_argument("--matrix-sizes", default="100,1024,10240,102400",
                        help="body bytes for --matrix (%(default)s)")
    parser.add_argument("--matrix-connections", default="10,50,200",
                        help="connections for --matrix, 1 KiB body (%(default)s)")
    parser.add_argument("--matrix-duration", type=float, default=3,
                        help="seconds per --matrix run (%(default)s)")
    parser.add_argument("--matrix-rounds", type=int, default=2,
                        help="interleaved rounds per --matrix cell (%(default)s)")
    parser.add_argument("--paced-rate", type=float, default=None,
                        help="after the saturated rounds, the same rounds paced to this many "
                             "requests/s (default: half of the minimal route's median req/s "
                             "in this invocation; 0: none): p50/p99 of a server that is not "
                             "saturated, the p99 <= 50 ms target's figure")
    parser.add_argument("--skip-batch", action="store_true", help="no batch phases")
    parser.add_argument("--skip-single", action="store_true",
                        help="no single-record rounds (only the batch phases)")
    parser.add_argument("--skip-producer-limit", action="store_true",
                        help="no (p) run of bench.producer_limit beside the batch rounds")
    parser.add_argument("--batch-rounds", type=int, default=1,
                        help="measured batch runs per body (%(default)s); with --compare-root "
                             "interleaved with the compared checkout's")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    check_broker(args.bootstrap)
    extra_env = gateway_env(args)
    body = json_body(args.body_size)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_description(), "workers": args.workers,
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration:g}s x {args.rounds} "
               f"interleaved rounds (warm-up {args.warmup:g}s)",
        "body_bytes": len(body), "gateway_env": extra_env}
    print(f"evgate ingestion benchmark, {results['date']}\nmachine: {results['machine']}\n"
          f"gunicorn.conf.py, {args.workers} workers; wrk {results['wrk']}, POST "
          f"{len(body)} B JSON; broker {args.bootstrap}", flush=True)
    failures: list[str] = []
    topic = f"bench-ingest-{uuid.uuid4().hex[:10]}"
    minimal_topic = f"bench-minimal-{uuid.uuid4().hex[:10]}"

    with cleanup_on_signals(), tempfile.TemporaryDirectory(prefix="evgate-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        database_url = f"sqlite:///{tmp}/evgate.db"
        targets: list[Target] = []
        if not args.skip_baseline and not args.matrix:
            targets.append(Target("baseline", "(a) bare Flask 202", stack.enter_context(
                GunicornServer("bench.baseline_app:app", workers=args.workers,
                               database_url=database_url, log_dir=tmp)), "/ingest"))
        if not args.skip_minimal:
            stack.enter_context(temporary_topic(args.bootstrap, minimal_topic, args.partitions))
            minimal_offsets = KafkaOffsets(args.bootstrap, minimal_topic)
            stack.callback(minimal_offsets.close)
            targets.append(Target("minimal", "(m) minimal produce", stack.enter_context(
                GunicornServer("bench.minimal_app:app", workers=args.workers,
                               database_url=database_url, kafka_bootstrap=args.bootstrap,
                               env={"BENCH_MINIMAL_TOPIC": minimal_topic}, log_dir=tmp)),
                "/ingest", minimal_offsets))

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
        if args.compare_root:
            compare_database_url = f"sqlite:///{tmp}/evgate-compare.db"
            import_apis_in(args.compare_root, compare_database_url, [
                api_definition(str(uuid.uuid4()), "/bench/ingest", topic, args.bootstrap),
                api_definition(str(uuid.uuid4()), "/bench/batch", topic, args.bootstrap,
                               batch=True)])
            targets.append(Target("compare", "(b0) evgate, compare-root", stack.enter_context(
                GunicornServer("wsgi:app", workers=args.workers,
                               database_url=compare_database_url,
                               kafka_bootstrap=args.bootstrap, env=extra_env, log_dir=tmp,
                               root=args.compare_root)), "/bench/ingest", offsets))
        evgate = Target("evgate", "(b) evgate -> Kafka", server, "/bench/ingest", offsets)
        targets.append(evgate)
        batch_targets = [Target("batch", "(c) batch", server, "/bench/batch", offsets)]
        if args.compare_root:
            batch_targets.append(Target("batch_compare", "(c0) batch, compare-root",
                                        targets[-2].server, "/bench/batch", offsets))

        if args.skip_single and not args.matrix:
            pass
        elif args.matrix:
            results["matrix"] = run_matrix(targets, args, failures)
        else:
            runs = interleaved(targets, body, args, connections=args.connections,
                               rounds=args.rounds, duration=args.duration, warmup=args.warmup)
            for key, rounds in runs.items():
                results[key] = summarise(rounds)
                failures += check_failures(key, rounds)
            _ratios(results, results)
            rate = paced_rate(args, results)
            if rate:
                # latency where it means something: the same connections, a load every
                # route can carry (a saturated closed loop measures its own queue)
                runs = interleaved(targets, body, args, connections=args.connections,
                                   rounds=args.rounds, duration=args.duration, warmup=0,
                                   rate=rate)
                results["paced"] = {"offered_rps": rate}
                for key, rounds in runs.items():
                    results["paced"][key] = summarise(rounds)
                    failures += check_failures(f"paced {key}", rounds)

        if not args.skip_batch and not args.matrix:
            records = [json_body(args.batch_record_size, i) for i in range(args.batch_size)]
            bodies = {"ndjson": (b"\n".join(records) + b"\n", "application/x-ndjson"),
                      "json-array": (b"[" + b",".join(records) + b"]", "application/json")}
            for name, (batch_body, content_type) in bodies.items():
                print(f"-- (c) batch {name}, {args.batch_size} x {args.batch_record_size} B",
                      flush=True)
                for target in batch_targets:
                    warm_up(target, batch_body, args, connections=args.batch_connections,
                            content_type=content_type)
                runs: dict[str, list[Round]] = {t.key: [] for t in batch_targets}
                limits: list[dict[str, Any]] = []
                for number in range(1, args.batch_rounds + 1):
                    order = batch_targets if number % 2 else list(reversed(batch_targets))
                    for target in order:
                        runs[target.key].append(measure_round(
                            target, batch_body, args, connections=args.batch_connections,
                            duration=args.duration, content_type=content_type,
                            per_request=args.batch_size))
                    if not args.skip_producer_limit:
                        limits.append(producer_limit(args, extra_env, failures))
                for key, rounds in runs.items():
                    failures += check_failures(f"{key} {name}", rounds)
                    results[f"{key}_{name}"] = dict(
                        summarise(rounds),
                        records_per_s=round(statistics.median(
                            r.result.ok * args.batch_size / r.result.duration_s
                            for r in rounds)),
                        cpu_us_per_record=round(statistics.median(
                            r.cpu_us for r in rounds) / args.batch_size, 1))
                if limits:
                    results[f"producer_limit_{name}"] = {
                        "records_per_s": round(statistics.median(
                            r["records_per_s"] for r in limits)),
                        "cpu_us_per_record": round(statistics.median(
                            r["cpu_us_per_record"] for r in limits), 1),
                        "rounds": limits}
        if failures:
            print("\ngateway log (tail):\n" + server.log_tail(), file=sys.stderr)

    _print_summary(results, failures)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(dict(results, failures=failures), handle, indent=2)
    return 1 if failures else 0


def producer_limit(args: argparse.Namespace, extra_env: dict[str, str],
                   failures: list[str]) -> dict[str, Any]:
    """(p): bench.producer_limit in its own process on a topic of its own, with the gateway's
    producer settings (--env), as long as one batch run: what the Kafka client and broker
    alone allow on these cores, with no HTTP at all."""
    topic = f"bench-limit-{uuid.uuid4().hex[:10]}"
    with temporary_topic(args.bootstrap, topic, args.partitions):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.producer_limit", "--bootstrap", args.bootstrap,
             "--topic", topic, "--seconds", str(args.duration),
             "--in-flight", str(args.batch_connections * args.batch_size),
             "--record-size", str(args.batch_record_size)],
            cwd=ROOT, env=dict(os.environ, **extra_env), capture_output=True, text=True,
            timeout=args.duration + 90)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        failures.append(f"producer limit: exit {proc.returncode}: {proc.stderr[-500:]}")
        return {"records_per_s": 0, "cpu_us_per_record": 0.0}
    if proc.returncode:
        failures.append(f"producer limit: records not acknowledged: {result}")
    print(f"   (p) bare producer, no HTTP  {result['records_per_s']:8d} records/s  "
          f"cpu {result['cpu_us_per_record']} us/record (all its threads)", flush=True)
    return result


def _ratios(source: dict[str, Any], into: dict[str, Any]) -> None:
    evgate = source.get("evgate")
    for key in ("minimal", "baseline"):
        if evgate and key in source:
            into[f"ratio_{key}"] = round(evgate["rps"] / source[key]["rps"], 3)


def run_matrix(targets: list[Target], args: argparse.Namespace,
               failures: list[str]) -> list[dict[str, Any]]:
    """The cost-growth table: each body size at 50 connections, each connection count at
    1 KiB; evgate and the minimal route in interleaved short rounds."""
    cells = [(int(size), 50) for size in args.matrix_sizes.split(",") if size]
    cells += [(1024, int(c)) for c in args.matrix_connections.split(",")
              if c and (1024, int(c)) not in cells]
    table = []
    for size, connections in cells:
        body = json_body(size)
        runs = interleaved(targets, body, args, connections=connections,
                           rounds=args.matrix_rounds, duration=args.matrix_duration,
                           warmup=1, settle=0.5)
        cell: dict[str, Any] = {"body_bytes": len(body), "connections": connections}
        for key, rounds in runs.items():
            cell[key] = summarise(rounds)
            failures += check_failures(f"matrix {len(body)} B x {connections}: {key}", rounds)
        _ratios(cell, cell)
        table.append(cell)
    return table


def _print_summary(results: dict[str, Any], failures: list[str]) -> None:
    print("\n== results (medians of the interleaved rounds) ==")
    for key, label in (("baseline", "(a) bare Flask 202"), ("minimal", "(m) minimal produce"),
                       ("compare", "(b0) compare-root"), ("evgate", "(b) evgate -> Kafka")):
        if key in results:
            r = results[key]
            landed = f"  landed {r['landed']} / 2xx {r['ok']}" if "landed" in r else ""
            print(f"{label:22} {r['rps']:8d} req/s  p50 {r['p50_ms']:6.2f} ms  "
                  f"p99 {r['p99_ms']:6.2f} ms  cpu {r['cpu_us_per_request']:5d} us/req{landed}")
    if "ratio_minimal" in results:
        verdict = "meets" if results["ratio_minimal"] >= RATIO_TARGET else "BELOW"
        print(f"evgate/minimal         {results['ratio_minimal']:.3f}  "
              f"({verdict} target {RATIO_TARGET})")
    if "compare" in results:
        print(f"evgate/compare-root    {results['evgate']['rps'] / results['compare']['rps']:.3f}"
              f"  (CPU per request {results['evgate']['cpu_us_per_request']} vs "
              f"{results['compare']['cpu_us_per_request']} us)")
    if "ratio_baseline" in results:
        print(f"evgate/bare            {results['ratio_baseline']:.3f}")
    paced = results.get("paced")
    if paced:
        print(f"paced to {paced['offered_rps']:.0f} req/s (not saturated):")
        for key, label in (("baseline", "(a) bare Flask 202"),
                           ("minimal", "(m) minimal produce"),
                           ("compare", "(b0) compare-root"), ("evgate", "(b) evgate -> Kafka")):
            if key in paced:
                r = paced[key]
                print(f"  {label:20} {r['rps']:8d} req/s  p50 {r['p50_ms']:6.2f} ms  "
                      f"p99 {r['p99_ms']:6.2f} ms  cpu {r['cpu_us_per_request']:5d} us/req")
        if "evgate" in paced:
            p99 = paced["evgate"]["p99_ms"]
            verdict = "meets" if p99 <= P99_TARGET_MS else "ABOVE"
            print(f"evgate p99 paced       {p99:.2f} ms  ({verdict} target {P99_TARGET_MS} ms)")
    for key, name in [(k, n) for n in ("ndjson", "json-array")
                      for k in ("batch_compare", "batch")]:
        r = results.get(f"{key}_{name}")
        if r:
            verdict = "meets" if r["records_per_s"] >= BATCH_TARGET else "BELOW"
            label = f"batch {name}" + (" (c0)" if key == "batch_compare" else "")
            print(f"{label:22} {r['records_per_s']:8d} records/s  ({r['rps']} req/s, "
                  f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                  f"{r['cpu_us_per_record']} us CPU/record; landed {r['landed']} / "
                  f"expected {r['expected']}; {verdict} target {BATCH_TARGET})")
            limit = results.get(f"producer_limit_{name}")
            if limit and key == "batch" and limit["records_per_s"]:
                print(f"{'(p) bare producer':22} {limit['records_per_s']:8d} records/s  "
                      f"({limit['cpu_us_per_record']} us CPU/record, no HTTP); batch {name} "
                      f"is {r['records_per_s'] / limit['records_per_s']:.2f} of it")
    if results.get("matrix"):
        print("\nbody B  conns | minimal req/s  p99 ms | evgate req/s  p99 ms | ratio")
        for cell in results["matrix"]:
            m, e = cell.get("minimal"), cell["evgate"]
            mtext = f"{m['rps']:13d} {m['p99_ms']:7.1f}" if m else f"{'-':>13} {'-':>7}"
            print(f"{cell['body_bytes']:6d} {cell['connections']:6d} | {mtext} | "
                  f"{e['rps']:12d} {e['p99_ms']:7.1f} | {cell.get('ratio_minimal', '-')}")
    for failure in failures:
        print(f"FAIL: {failure}")


if __name__ == "__main__":
    sys.exit(main())

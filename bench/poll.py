"""Polling benchmark: reading a backlog through evgate's http-get versus a bare Kafka consumer.

    .venv/bin/python -m bench.poll            (make bench)

In one invocation, against the same broker and the same pre-produced backlog (1 KiB records,
--content padded or json):

  (a) bare      a confluent-kafka Consumer per client, assign()ed at the client's start offset,
                reading pages of --page records with consume() (what the gateway cannot beat)
  (b) evgate    an http-get API (messagesLimitCount = --page); each client follows
                `pagination.nextCursor` from its start position with keep-alive GETs
  (b0) compare  with --compare-root DIR: the same, served by another checkout's evgate (the
                commit before a change), in the same rounds, the two gateways' order
                alternating from round to round (an A/B that a busy box disturbs alike)

for 1 client, then --clients clients at once, each on its own position of the backlog
(--rounds times; medians), as threads of this process or, with --client-processes, each in
a forked process of its own (the per-client shares then not decided by this process's GIL).
The concurrent clients of each round read a part of the backlog that nothing read before,
--region-gap records past the last part read, so that none finds a reader that an earlier
phase left warm at its position (which made one client of ten 4-5x faster than the rest).
It prints records/s (all clients together), p50/p99 per page, the gateway workers' CPU
time per page (user + system, clock ticks of 10 ms: a rough figure) and, for the concurrent
clients, how evenly they were served: the slowest, median and fastest client's own
records/s and Jain's fairness index of them ((sum x)^2 / (n sum x^2): 1 when all are
equal, 1/n when one client gets everything), beside the bare consumers' in the same round.
It checks that every client got exactly the records after its start, in order. A last phase
times --first-pages single pages, one after another, each at a position behind every reader
already running (descending), so each needs a new catch-up reader: what a client's first
page costs. Each phase is bounded by --max-seconds. Before anything is timed, every worker
serves one empty page at the live tail (--no-warmup: not).
Exit status: 0 ok, 1 a check failed, 2 the broker is missing. The target (evgate >= 80k
records/s for one client) is reported, not enforced. Everything binds and targets 127.0.0.1;
every process started here is stopped by PID.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .common import (GunicornServer, add_gateway_args, check_broker, cleanup_on_signals,
                     gateway_env, import_apis, import_apis_in, machine_description,
                     temporary_topic)

TARGET = 80_000


def api_definition(api_id: str, path: str, topic: str, bootstrap: str, page: int
                   ) -> dict[str, Any]:
    """An http-get <- kafka API, keyless (like examples/apis with an http-get entrypoint)."""
    return {
        "id": api_id, "name": f"bench {path}", "apiVersion": "1.0",
        "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-get", "configuration": {
                           "messagesLimitCount": page, "messagesLimitDurationMs": 1000}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [{
            "name": "default", "type": "kafka", "weight": 1, "inheritConfiguration": False,
            "configuration": {"bootstrapServers": bootstrap, "topics": [topic],
                              "consumer": {"enabled": True}, "producer": {"enabled": False}}}]}],
        "flows": [],
        "plans": [{"id": str(uuid.uuid4()), "name": "Keyless", "security": {"type": "key-less"},
                   "status": "published"}],
    }


@dataclass
class ClientRun:
    start: int                      # first offset this client reads
    want: int                       # records it reads
    got: int = 0
    in_order: bool = True
    pages: list[float] = field(default_factory=list)   # seconds per page
    first_records: int = 0          # records of its first page (the page that starts a reader)
    error: str | None = None


@dataclass
class PhaseResult:
    label: str
    clients: list[ClientRun]
    seconds: float

    @property
    def records(self) -> int:
        return sum(c.got for c in self.clients)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        pages = sorted(p for c in self.clients for p in c.pages)
        if not pages:
            return 0.0
        return pages[min(len(pages) - 1, int(q * len(pages)))] * 1000

    def client_rates(self, after_first: bool = False) -> list[float]:
        """Each client's own records/s (its records over its time in requests), sorted: the
        fairness of the concurrent phase (the slowest client next to the median). With
        `after_first`, without each client's first page, which starts its reader (a spare
        consumer or a new one) and so is far slower for some clients than for others."""
        skip = 1 if after_first else 0
        return sorted((c.got - (c.first_records if skip else 0)) / sum(c.pages[skip:])
                      for c in self.clients if len(c.pages) > skip and sum(c.pages[skip:]))

    def fairness(self, after_first: bool = False) -> float:
        """Jain's fairness index of the per-client rates (1: all equal; 0 without rates)."""
        return jain_index(self.client_rates(after_first))

    def failures(self) -> list[str]:
        out = []
        for index, client in enumerate(self.clients):
            if client.error:
                out.append(f"{self.label} client {index}: {client.error}")
            elif client.got != client.want or not client.in_order:
                out.append(f"{self.label} client {index}: got {client.got} of {client.want} "
                           f"records (in order: {client.in_order})")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"clients": len(self.clients), "records": self.records,
                "seconds": round(self.seconds, 3), "records_per_s": round(self.rate),
                "page_p50_ms": round(self.percentile(0.5), 2),
                "page_p99_ms": round(self.percentile(0.99), 2),
                "client_records_per_s": _spread(self.client_rates()),
                "client_records_per_s_after_first_page": _spread(self.client_rates(True)),
                "fairness": round(self.fairness(), 3),
                "fairness_after_first_page": round(self.fairness(True), 3)}


def jain_index(rates: list[float]) -> float:
    """(sum x)^2 / (n * sum x^2): 1 when every client got the same rate, 1/n when one got
    everything (R. Jain, D. Chiu, W. Hawe, DEC-TR-301, 1984); 0 for no rates."""
    squares = sum(rate * rate for rate in rates)
    return sum(rates) ** 2 / (len(rates) * squares) if squares else 0.0


def _spread(rates: list[float]) -> dict[str, int]:
    """The slowest, median and fastest of sorted per-client rates (zeros when none)."""
    return {"min": round(rates[0]) if rates else 0,
            "median": round(statistics.median(rates)) if rates else 0,
            "max": round(rates[-1]) if rates else 0}


# where a record's 10-digit sequence number starts in its content, by --content
INDEX_AT = {"padded": 0, "json": 8}


def record_value(index: int, size: int, content: str = "padded") -> bytes:
    """The backlog's record `index`: `padded`, its number and `x`s (a page's contents go out
    as they are); `json`, a JSON document with its number, a device, a time stamp and a hex
    payload (what an API carries: its quotes are escaped in a JSON page)."""
    if content == "padded":
        return (b"%010d" % index) + b"x" * (size - 10)
    head = b'{"seq":"%010d","device":"sensor-%d","ts":%d,"payload":"' % (
        index, index % 50, 1_700_000_000_000 + index)
    fill = max(0, size - len(head) - 2)
    return head + (index.to_bytes(8, "big").hex().encode() * (fill // 16 + 1))[:fill] + b'"}'


def produce_backlog(bootstrap: str, topic: str, count: int, size: int,
                    content: str = "padded") -> None:
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                         "batch.size": 1 << 20})
    for index in range(count):
        value = record_value(index, size, content)
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("the backlog was not fully acknowledged")


def bare_client(bootstrap: str, topic: str, page: int, deadline: float
                ) -> Callable[[ClientRun], None]:
    from confluent_kafka import Consumer, TopicPartition

    def run(client: ClientRun) -> None:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-poll-bare",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 20})
        try:
            consumer.assign([TopicPartition(topic, 0, client.start)])
            expected = client.start
            while client.got < client.want and time.monotonic() < deadline:
                began = time.perf_counter()
                records = consumer.consume(min(page, client.want - client.got), 1.0)
                for record in records:
                    if record.error() is None:
                        client.in_order &= record.offset() == expected
                        expected += 1
                        client.got += 1
                client.pages.append(time.perf_counter() - began)
                if len(client.pages) == 1:
                    client.first_records = client.got
        finally:
            consumer.close()
    return run


def evgate_client(url: str, path: str, topic: str, page: int, deadline: float,
                  index_at: int = 0) -> Callable[[ClientRun], None]:
    from evgate.kafka import cursor as cursors
    host, port = url.removeprefix("http://").split(":")

    def run(client: ClientRun) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        cursor = cursors.encode({(topic, 0): client.start - 1})
        expected = client.start
        try:
            while client.got < client.want and time.monotonic() < deadline:
                began = time.perf_counter()
                conn.request("GET", f"{path}?cursor={cursor}&limit={page}",
                             headers={"Accept": "application/json"})
                response = conn.getresponse()
                raw = response.read()
                if response.status != 200:
                    client.error = f"HTTP {response.status}: {raw[:200]!r}"
                    return
                body = json.loads(raw)
                client.pages.append(time.perf_counter() - began)
                for item in body["items"][:client.want - client.got]:
                    client.in_order &= int(item["content"][index_at:index_at + 10]) \
                        == expected
                    expected += 1
                    client.got += 1
                if len(client.pages) == 1:
                    client.first_records = client.got
                cursor = body["pagination"]["nextCursor"]
        finally:
            conn.close()
    return run


def first_pages(url: str, path: str, topic: str, page: int, backlog: int, count: int,
                index_at: int = 0) -> list[float]:
    """Seconds for each of `count` first pages, at descending positions (a reader only serves
    positions at or after its own, so none can join one already running), ~0.3 s apart (a
    client's first page after another's: the pool has time to replace a spare it took)."""
    from evgate.kafka import cursor as cursors
    host, port = url.removeprefix("http://").split(":")
    step = max(page, (backlog - page) // max(1, count))
    times = []
    for index in range(count):
        start = backlog - page - index * step
        if start < 0:
            break
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            cursor = cursors.encode({(topic, 0): start - 1})
            began = time.perf_counter()
            conn.request("GET", f"{path}?cursor={cursor}&limit={page}",
                         headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = json.loads(response.read())
            elapsed = time.perf_counter() - began
            if response.status != 200 or len(body["items"]) != page \
                    or int(body["items"][0]["content"][index_at:index_at + 10]) != start:
                raise RuntimeError(f"first page at {start}: HTTP {response.status}")
            times.append(elapsed)
        finally:
            conn.close()
        time.sleep(0.3)
    return times


def warm_up(url: str, path: str, connections: int) -> None:
    """Every worker serves its first request (API deployment, lazy imports, the consumer pool)
    before anything is timed: one empty page at the live tail (`Prefer: wait=0`) per
    connection, all connections open at once so the workers share them. No catch-up reader
    is started, so no phase finds one warm."""
    host, port = url.removeprefix("http://").split(":")
    conns = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(connections)]
    try:
        for conn in conns:
            conn.connect()
        for conn in conns:
            conn.request("GET", f"{path}?limit=1", headers={"Accept": "application/json",
                                                            "Prefer": "wait=0"})
        for conn in conns:
            conn.getresponse().read()
    finally:
        for conn in conns:
            conn.close()


def workers_cpu(master_pid: int) -> float:
    """CPU seconds (user + system, every thread) the gateway's workers used so far: per page,
    a figure that a busy shared box disturbs far less than wall-clock rates."""
    total = 0
    try:
        with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
            pids = children.read().split()
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])     # utime, stime (clock ticks)
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def run_phase(label: str, clients: list[ClientRun], runner: Callable[[ClientRun], None],
              processes: bool = False) -> PhaseResult:
    """Run every client at once: in threads of this process, or with `processes` each in a
    process of its own (forked), so that the clients' shares are the server's and the OS
    scheduler's, not those of this process's GIL (ten threads each parsing ~540 KB pages
    take turns by the GIL's switch interval, which is not fair to them)."""
    def guarded(client: ClientRun) -> None:
        try:
            runner(client)
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            client.error = f"{type(exc).__name__}: {exc}"
    if processes:
        began = _run_in_processes(clients, guarded)
    else:
        threads = [threading.Thread(target=guarded, args=(c,), daemon=True) for c in clients]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    result = PhaseResult(label, clients, time.perf_counter() - began)
    print(f"   {label}: {result.records} records in {result.seconds:.2f}s = "
          f"{result.rate:,.0f} records/s; page p50 {result.percentile(0.5):.2f} ms, "
          f"p99 {result.percentile(0.99):.2f} ms", flush=True)
    for heading, rates in (("per client", result.client_rates()),
                           ("after the first page", result.client_rates(after_first=True))):
        if len(rates) > 1:
            spread = _spread(rates)
            print(f"      {heading}: slowest {spread['min']:,}, median {spread['median']:,},"
                  f" fastest {spread['max']:,} records/s; fairness {jain_index(rates):.3f}",
                  flush=True)
    return result


def _run_in_processes(clients: list[ClientRun], guarded: Callable[[ClientRun], None]
                      ) -> float:
    """Fork one process per client, start them together, copy each one's results back into
    its ClientRun; the start time (perf_counter)."""
    context = multiprocessing.get_context("fork")
    go = context.Event()
    pipes, children = [], []
    for client in clients:
        receive, send = context.Pipe(duplex=False)

        def child(client: ClientRun = client, send: Any = send) -> None:
            go.wait()
            guarded(client)
            send.send(dataclasses.asdict(client))

        process = context.Process(target=child, daemon=True)
        process.start()
        send.close()
        pipes.append(receive)
        children.append(process)
    began = time.perf_counter()
    go.set()
    for client, receive, process in zip(clients, pipes, children):
        try:
            for name, value in receive.recv().items():
                setattr(client, name, value)
        except EOFError:
            client.error = f"client process ended with {process.exitcode} before reporting"
        process.join()
    return began


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.poll", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gateway_args(parser, "also run the evgate of another checkout (e.g. `git worktree add` "
                             "of the commit before a change) as (b0), in the same rounds, the "
                             "order of the two gateways alternating")
    parser.add_argument("--records", type=int, default=20000,
                        help="records one client reads (%(default)s)")
    parser.add_argument("--clients", type=int, default=10,
                        help="clients of the concurrent phase (%(default)s)")
    parser.add_argument("--region-gap", type=int, default=20000,
                        help="records left unread before each round's concurrent clients, so "
                             "none finds a reader left warm by an earlier phase; more than "
                             "the gateways' EVGATE_STREAM_READER_CROWDED_SHARE_WINDOW "
                             "(%(default)s)")
    parser.add_argument("--per-client", type=int, default=5000,
                        help="records each client of the concurrent phase reads (%(default)s)")
    parser.add_argument("--page", type=int, default=500, help="records per page (%(default)s)")
    parser.add_argument("--record-size", type=int, default=1024, help="bytes per record")
    parser.add_argument("--content", choices=sorted(INDEX_AT), default="padded",
                        help="records: `padded` (a number and x's: a JSON page carries them "
                             "as they are) or `json` (JSON documents: their quotes are "
                             "escaped in a page) (%(default)s)")
    parser.add_argument("--first-pages", type=int, default=12,
                        help="first pages at new positions to time at the end (%(default)s)")
    parser.add_argument("--max-seconds", type=float, default=60,
                        help="upper bound of each phase (%(default)s)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="time the workers' very first requests too")
    parser.add_argument("--client-processes", action="store_true",
                        help="run each client in a process of its own (forked) instead of a "
                             "thread: the per-client shares of the concurrent phase are then "
                             "not decided by this process's GIL")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of the two phases; medians are reported (%(default)s)")
    return parser.parse_args(argv)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_broker(args.bootstrap)
    extra_env = gateway_env(args)
    # 0..records: the single client; then, per round, a gap and the concurrent clients' part
    region = args.clients * args.per_client + args.region_gap
    backlog = args.records + args.rounds * region
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_description(), "workers": args.workers, "page": args.page,
        "record_bytes": args.record_size, "content": args.content, "backlog": backlog,
        "gateway_env": extra_env,
        "rounds": args.rounds, "compare_root": args.compare_root}
    print(f"evgate polling benchmark, {results['date']}\nmachine: {results['machine']}\n"
          f"gunicorn.conf.py, {args.workers} workers; backlog {backlog} x {args.record_size} B"
          f" ({args.content});"
          f" pages of {args.page}; {args.rounds} round(s); broker {args.bootstrap}", flush=True)
    topic = f"bench-poll-{uuid.uuid4().hex[:10]}"
    failures: list[str] = []
    path = "/bench/poll"
    with cleanup_on_signals(), tempfile.TemporaryDirectory(prefix="evgate-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        stack.enter_context(temporary_topic(args.bootstrap, topic, 1))
        print(f"-- producing {backlog} records", flush=True)
        produce_backlog(args.bootstrap, topic, backlog, args.record_size, args.content)
        definition = api_definition(str(uuid.uuid4()), path, topic, args.bootstrap, args.page)
        database_url = f"sqlite:///{tmp}/evgate.db"
        import_apis(database_url, [definition])
        # (target, label, server): this tree, and another checkout's evgate (A/B, same run)
        targets = [("evgate", "(b) evgate http-get", stack.enter_context(GunicornServer(
            "wsgi:app", workers=args.workers, database_url=database_url,
            kafka_bootstrap=args.bootstrap, env=extra_env, log_dir=tmp)))]
        if args.compare_root:
            compare_url = f"sqlite:///{tmp}/evgate-compare.db"
            import_apis_in(args.compare_root, compare_url, [definition])
            targets.insert(0, ("compare", "(b0) compare-root", stack.enter_context(
                GunicornServer("wsgi:app", workers=args.workers, database_url=compare_url,
                               kafka_bootstrap=args.bootstrap, env=extra_env, log_dir=tmp,
                               root=args.compare_root))))
        if args.warmup:
            for _target, _label, server in targets:
                warm_up(server.url, path, 2 * args.workers)

        def single(_round_index: int) -> list[ClientRun]:
            return [ClientRun(0, args.records)]

        def many(round_index: int) -> list[ClientRun]:
            first = args.records + round_index * region + args.region_gap
            return [ClientRun(first + i * args.per_client, args.per_client)
                    for i in range(args.clients)]

        names = ["1 client", f"{args.clients} clients"]
        # per phase, per target ("bare" included): one dict per round
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {t: [] for t in ["bare"] + [t[0] for t in targets]} for name in names}
        for round_index in range(args.rounds):
            # the order of the gateways alternates from round to round (interleaved A/B)
            order = targets if round_index % 2 == 0 else targets[::-1]
            for name, clients in zip(names, (single, many)):
                print(f"-- {name}" + (f", round {round_index + 1}" if args.rounds > 1 else ""),
                      flush=True)
                deadline = time.monotonic() + args.max_seconds
                bare = run_phase("(a) bare consumer", clients(round_index),
                                 bare_client(args.bootstrap, topic, args.page, deadline),
                                 args.client_processes)
                failures += bare.failures()
                runs[name]["bare"].append(bare.as_dict())
                for target, label, server in order:
                    deadline = time.monotonic() + args.max_seconds
                    cpu = workers_cpu(server.pid)
                    gateway = run_phase(label, clients(round_index), evgate_client(
                        server.url, path, topic, args.page, deadline, INDEX_AT[args.content]),
                        args.client_processes)
                    pages = sum(len(c.pages) for c in gateway.clients)
                    cpu_ms = (workers_cpu(server.pid) - cpu) * 1000 / pages if pages else 0.0
                    print(f"      gateway workers' CPU: {cpu_ms:.2f} ms per page", flush=True)
                    failures += gateway.failures()
                    runs[name][target].append(dict(
                        gateway.as_dict(), cpu_ms_per_page=round(cpu_ms, 2),
                        ratio=round(gateway.rate / bare.rate, 3) if bare.rate else None))
        for name in names:
            results[name] = {target: {
                "rounds": rounds,
                "median": {key: round(_median([r[key] for r in rounds if r.get(key) is not None]),
                                      3 if key == "ratio" else 2)
                           for key in ("records_per_s", "page_p50_ms", "page_p99_ms",
                                       "cpu_ms_per_page", "ratio", "fairness")
                           if key in rounds[0]}}
                for target, rounds in runs[name].items()}
        if args.first_pages:
            for target, label, server in targets:
                print(f"-- {args.first_pages} first pages at new positions, {label}", flush=True)
                try:
                    times = first_pages(server.url, path, topic, args.page, backlog,
                                        args.first_pages, INDEX_AT[args.content])
                except Exception as exc:  # noqa: BLE001 - reported as a failed check
                    failures.append(f"first pages ({target}): {type(exc).__name__}: {exc}")
                    times = []
                if times:
                    ordered = sorted(t * 1000 for t in times)
                    results.setdefault("first pages", {})[target] = {
                        "pages": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
                        "max_ms": round(ordered[-1], 2)}
                    print(f"   {label} first page: p50 {statistics.median(ordered):.2f} ms, "
                          f"max {ordered[-1]:.2f} ms ({len(ordered)} pages)", flush=True)
        if failures:
            for _target, _label, server in targets:
                print("\ngateway log (tail):\n" + server.log_tail(), file=sys.stderr)

    print("\n== results" + (f" (medians of {args.rounds} rounds)" if args.rounds > 1 else "")
          + " ==")
    labels = {"bare": "(a) bare consumer", "compare": "(b0) compare-root",
              "evgate": "(b) evgate http-get"}
    for name in names:
        for target, summary in results[name].items():
            m = summary["median"]
            extra = (f"  CPU {m['cpu_ms_per_page']:5.2f} ms/page  ratio {m['ratio']:.3f}"
                     if "ratio" in m else "")
            if name != names[0]:
                extra += f"  fairness {m['fairness']:.3f}"
            print(f"{name:11} {labels[target]:20} {m['records_per_s']:9,.0f} records/s  page p50 "
                  f"{m['page_p50_ms']:6.2f} ms  p99 {m['page_p99_ms']:6.2f} ms{extra}")
        if "compare" in results[name]:
            new, old = (results[name][t]["median"]["records_per_s"] for t in ("evgate", "compare"))
            if old:
                print(f"{name:11} evgate/compare-root   {new / old:.3f}")
    one = results["1 client"]["evgate"]["median"]["records_per_s"]
    verdict = "meets" if one >= TARGET else "BELOW"
    print(f"one client through evgate: {one:,.0f} records/s ({verdict} target {TARGET:,})")
    for failure in failures:
        print(f"FAIL: {failure}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(dict(results, failures=failures), handle, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every Prometheus metric of evgate, declared once, with bounded labels.

| Metric                                   | Type      | Labels                      | Counted where                          |
|------------------------------------------|-----------|-----------------------------|----------------------------------------|
| evgate_requests_total                    | counter   | api, entrypoint, status     | gateway port, when a response ends (*) |
| evgate_records_in_total                  | counter   | api, entrypoint             | kafka endpoint: records Kafka acked    |
| evgate_produce_failures_total            | counter   | api, entrypoint             | kafka endpoint: records not acked      |
| evgate_produce_latency_seconds           | histogram | api                         | kafka endpoint: enqueue to last ack    |
| evgate_records_out_total                 | counter   | api, entrypoint             | sse/websocket/http-get/webhook: given  |
|                                          |           |                             | to a client (flushed every second)     |
| evgate_open_connections                  | gauge     | api, entrypoint             | open streaming clients (livesum)       |
| evgate_slow_client_disconnects_total     | counter   | api, entrypoint             | a client's buffer overflowed           |
| evgate_messages_filtered_total           | counter   | api, entrypoint             | message-filtering dropped a message    |
| evgate_webhook_deliveries_total          | counter   | subscription, outcome       | delivered / filtered / dlq             |
| evgate_webhook_retries_total             | counter   | subscription                | a webhook attempt will be retried      |
| evgate_consumer_lag                      | gauge     | subscription                | webhook group: high watermark minus    |
|                                          |           |                             | committed offset, sampled (livesum)    |

(*) Counted per request in plain ints and written to prometheus_client's values by `flush()`
every FLUSH_INTERVAL_S (1 s), before each scrape of the worker and at worker exit, as are the
three produce metrics and records_out: another worker's scrape may see a count up to one
second old. A multiprocess `inc()`/`observe()` takes a lock and writes an mmap: per request,
that was a measurable share of an ingestion request (docs/benchmarks.md).

Cardinality: `api` is bounded by the deployed APIs (`-` when no API matched), `entrypoint` by the
entrypoint types, `status` by the HTTP codes the gateway answers, `outcome` a fixed set. `subscription` is bounded by the number of webhook subscriptions, which
operators create (accepted: a gateway with 10k webhook subscriptions has 10k series per
metric). Nothing is labelled per client, per IP or per message.

Across gunicorn workers: prometheus_client's multiprocess mode. The master creates a fresh
`PROMETHEUS_MULTIPROC_DIR` (evgate/observability/multiproc.py, gunicorn `on_starting`) before any
worker imports prometheus_client (the value class is chosen at import), each worker writes its
own mmap files, a scrape on any worker (`render`) sums them, and `child_exit` calls
`mark_process_dead` so a dead worker's live gauges disappear (its counters stay, as they must).
Without the variable (unit tests, one process) the default registry is used.

Only the hub thread may touch these objects: prometheus_client guards its files with a
`threading.Lock`, which is a gevent lock in a patched worker. Native Kafka threads hand their
samples to the hub (see `set_consumer_lag`).
"""
from __future__ import annotations

import logging
import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, \
    Histogram, generate_latest

logger = logging.getLogger(__name__)

from .multiproc import MULTIPROC_ENV
NO_API = "-"

REQUESTS = Counter(
    "evgate_requests", "Requests answered on the gateway port, by API, entrypoint and status.",
    ["api", "entrypoint", "status"])
RECORDS_IN = Counter(
    "evgate_records_in", "Records produced to Kafka and acknowledged.", ["api", "entrypoint"])
PRODUCE_FAILURES = Counter(
    "evgate_produce_failures", "Records Kafka did not acknowledge.", ["api", "entrypoint"])
PRODUCE_LATENCY = Histogram(
    "evgate_produce_latency_seconds",
    "Time from handing records to the producer until Kafka acknowledged the last one.",
    ["api"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                      10.0))
RECORDS_OUT = Counter(
    "evgate_records_out", "Records given to clients (stream frames, pages, webhook calls).",
    ["api", "entrypoint"])
OPEN_CONNECTIONS = Gauge(
    "evgate_open_connections", "Open streaming clients (sse, websocket, http-get).",
    ["api", "entrypoint"], multiprocess_mode="livesum")
SLOW_CLIENT_DISCONNECTS = Counter(
    "evgate_slow_client_disconnects",
    "Streaming clients disconnected because their buffer was full.", ["api", "entrypoint"])
MESSAGES_FILTERED = Counter(
    "evgate_messages_filtered",
    "Messages dropped by message-filtering (publish: before Kafka; subscribe: before the "
    "client), by API and the entrypoint of the request or subscription.", ["api", "entrypoint"])
WEBHOOK_DELIVERIES = Counter(
    "evgate_webhook_deliveries",
    "Webhook records settled: delivered (2xx), filtered (by a policy) or dlq.",
    ["subscription", "outcome"])
WEBHOOK_RETRIES = Counter(
    "evgate_webhook_retries", "Webhook attempts that failed and will be retried.",
    ["subscription"])
CONSUMER_LAG = Gauge(
    "evgate_consumer_lag",
    "Webhook subscription lag: high watermark minus committed offset, summed over the "
    "partitions this worker owns (sampled every few seconds).",
    ["subscription"], multiprocess_mode="livesum")


# -- hot-path counting ---------------------------------------------------------------------
class Tally:
    """A plain-int counter for per-message paths, added to its Prometheus child by `flush()`
    (every second by a greenlet, and before each scrape). A multiprocess `inc()` takes a lock
    and writes an mmap (~1-2 us), a third of a fan-out delivery's whole cost."""

    __slots__ = ("child", "n")

    def __init__(self, child: Any):
        self.child = child
        self.n = 0


class HistogramTally:
    """Observations of one histogram child gathered per bucket in plain numbers and added
    to its multiprocess values by `flush()`, like `Tally` (the produce latency is observed
    once per ingested request: two locked mmap writes each)."""

    __slots__ = ("child", "bounds", "counts", "sum")

    def __init__(self, child: Any):
        self.child = child
        self.bounds = list(child._upper_bounds)   # prometheus_client's own bucket bounds
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        counts = self.counts
        for index, bound in enumerate(self.bounds):
            if amount <= bound:
                counts[index] += 1
                break
        self.sum += amount

    def drain(self) -> None:
        counts, total = self.counts, self.sum
        if not any(counts):
            return
        self.counts, self.sum = [0] * len(self.bounds), 0.0
        # what Histogram.observe does per observation, once per bucket touched
        self.child._sum.inc(total)
        for index, count in enumerate(counts):
            if count:
                self.child._buckets[index].inc(count)


_tallies: dict[tuple, Tally] = {}
_histograms: dict[tuple, HistogramTally] = {}
_flusher_pid: int | None = None
#: how late a per-request metric may be: flushed every FLUSH_INTERVAL_S, before each scrape
#: of this worker and at worker exit (docs/observability.md)
FLUSH_INTERVAL_S = 1.0


def records_out_tally(api: str, entrypoint: str) -> Tally:
    key = ("out", api, entrypoint)
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = Tally(RECORDS_OUT.labels(api or NO_API, entrypoint))
        _ensure_flusher()
    return tally


def flush() -> None:
    for tally in list(_tallies.values()):
        n = tally.n
        if n:
            tally.n = 0
            tally.child.inc(n)
    for histogram in list(_histograms.values()):
        histogram.drain()


def _tally(key: tuple, make_child: Any) -> Tally:
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = Tally(make_child())
        _ensure_flusher()
    return tally


def _ensure_flusher() -> None:
    global _flusher_pid
    if _flusher_pid == os.getpid():
        return
    _flusher_pid = os.getpid()
    import gevent

    def loop() -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            try:
                flush()
            except Exception:  # noqa: BLE001 - metrics never stop the worker
                logger.debug("metrics flush failed", exc_info=True)

    gevent.spawn(loop)


# -- helpers for the instrumented modules (each a one-line call there) ---------------------
def count_request(api: str | None, entrypoint: str | None, status: int | str) -> None:
    """Once per gateway request: a Tally (written to the metrics files by `flush`)."""
    tally = _tallies.get(("req", api, entrypoint, status))
    if tally is None:
        tally = _tally(("req", api, entrypoint, status), lambda: REQUESTS.labels(
            api or NO_API, entrypoint or NO_API, str(status)))
    tally.n += 1


def record_produce(api: str, entrypoint: str | None, seconds: float, acked: int,
                   failed: int) -> None:
    """Once per produce request (a single record or a batch), on the hub: tallies."""
    histogram = _histograms.get(("latency", api))
    if histogram is None:
        histogram = _histograms[("latency", api)] = HistogramTally(PRODUCE_LATENCY.labels(api))
        _ensure_flusher()
    histogram.observe(seconds)
    if acked:
        _tally(("in", api, entrypoint), lambda: RECORDS_IN.labels(
            api, entrypoint or NO_API)).n += acked
    if failed:
        _tally(("fail", api, entrypoint), lambda: PRODUCE_FAILURES.labels(
            api, entrypoint or NO_API)).n += failed


def stream_opened(api: str, entrypoint: str) -> None:
    OPEN_CONNECTIONS.labels(api, entrypoint).inc()


def stream_closed(api: str, entrypoint: str, kind: str | None) -> None:
    OPEN_CONNECTIONS.labels(api, entrypoint).dec()
    if kind == "slow":
        SLOW_CLIENT_DISCONNECTS.labels(api, entrypoint).inc()


def message_filtered(api: str | None, entrypoint: str | None) -> None:
    MESSAGES_FILTERED.labels(api or NO_API, entrypoint or NO_API).inc()


def webhook_outcome(subscription: str, outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(subscription, outcome).inc()


def webhook_retry(subscription: str) -> None:
    WEBHOOK_RETRIES.labels(subscription).inc()


def set_consumer_lag(subscription: str, lag: int) -> None:
    """On the hub only (a native thread hands the value over with HubHandoff.call)."""
    CONSUMER_LAG.labels(subscription).set(max(0, lag))


def sample_lag(consumer: Any, assignment: list, committed: dict, fresh: bool = False) -> int:
    """On a group consumer's own native thread (never the hub: `fresh` asks the broker): the
    sum over `assignment` of the high watermark (cached from fetches unless `fresh`) minus the
    committed offset (`committed[(topic, partition)]`, else the consumer's position).
    Partitions without a known watermark yet count 0."""
    lag = 0
    positions = {}
    try:
        for tp in consumer.position(assignment):
            positions[(tp.topic, tp.partition)] = tp.offset
    except Exception:  # noqa: BLE001 - a sample is best effort
        return 0
    for tp in assignment:
        key = (tp.topic, tp.partition)
        try:
            if fresh:
                _low, high = consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
            else:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
        except Exception:  # noqa: BLE001
            continue
        base = committed.get(key, positions.get(key, -1))
        if high is None or high < 0 or base is None or base < 0:
            continue
        lag += max(0, high - base)
    return lag


# -- exposition ------------------------------------------------------------------------------
def render() -> tuple[bytes, str]:
    """The text exposition of every worker's metrics (or this process's, outside gunicorn)."""
    flush()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def observe_stream(subscription: Any, api: str, entrypoint: str) -> None:
    """Count a streaming client (sse, websocket, http-get): the open-connections gauge until
    it closes, each record it is given (`Subscription.delivered`), a slow-client cut."""
    stream_opened(api, entrypoint)
    tally = records_out_tally(api, entrypoint)
    delivered = subscription.delivered

    def counted(item: Any) -> None:
        tally.n += 1
        delivered(item)

    subscription.delivered = counted
    subscription.add_close_callback(
        lambda sub: stream_closed(api, entrypoint, getattr(sub.closed, "kind", None)))

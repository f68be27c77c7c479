"""Charts: the gateway nodes' own Prometheus metrics, scraped server-side, as a small JSON.

The console reads `/_node/metrics` of each node in EVGATE_CONSOLE_NODE_URLS (default: the
local node, http://EVGATE_NODE_BIND), sums the nodes, and turns the counters into rates over
the interval since the previous scrape this worker made (kept in memory, one per worker):
requests and records in/out per second per API, produce (ingestion) latency percentiles from
the histogram's bucket deltas, webhook deliveries, retries and DLQ per second, open stream
clients. The browser never talks to the nodes (they may not be reachable from it, and the
node port is not authenticated for the outside).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

import requests
from flask import abort, current_app, jsonify, render_template
from prometheus_client.parser import text_string_to_metric_families

from .blueprint import bp, is_admin

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0
_last: dict[str, Any] = {}
_lock = threading.Lock()


def node_urls(config: Any) -> list[str]:
    urls = list(config.console_node_urls) or [f"http://{config.node_bind}"]
    return [u.rstrip("/") for u in urls]


def scrape(urls: list[str], timeout: float = SCRAPE_TIMEOUT
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Summed samples of every node: {(name, labels...): value}, and each node's outcome."""
    totals: dict[Any, float] = defaultdict(float)
    nodes = []
    for url in urls:
        try:
            answer = requests.get(url + "/_node/metrics", timeout=timeout)
            answer.raise_for_status()
            families = list(text_string_to_metric_families(answer.text))
        except (requests.RequestException, ValueError) as exc:
            logger.info("console charts: cannot read %s/_node/metrics: %s", url, exc)
            nodes.append({"url": url, "ok": False, "error": str(exc)[:200]})
            continue
        nodes.append({"url": url, "ok": True})
        for family in families:
            for sample in family.samples:
                labels = sample.labels
                if sample.name in ("evgate_requests_total", "evgate_records_in_total",
                                   "evgate_records_out_total", "evgate_produce_failures_total"):
                    totals[(sample.name, labels.get("api") or "-")] += sample.value
                elif sample.name == "evgate_open_connections":
                    totals[(sample.name, labels.get("api") or "-")] += sample.value
                elif sample.name == "evgate_produce_latency_seconds_bucket":
                    totals[(sample.name, labels.get("le"))] += sample.value
                elif sample.name == "evgate_webhook_deliveries_total":
                    totals[(sample.name, labels.get("outcome") or "-")] += sample.value
                    totals[("sub", labels.get("subscription"), labels.get("outcome"))] += \
                        sample.value
                elif sample.name == "evgate_webhook_retries_total":
                    totals[(sample.name, "-")] += sample.value
                    totals[("sub", labels.get("subscription"), "retries")] += sample.value
    return dict(totals), nodes


def _percentile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """From cumulative (le, count) pairs: the upper bound of the bucket holding quantile q."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    for le, count in buckets:
        if count >= target:
            return le
    return buckets[-1][0]


def summary(now_totals: dict[Any, float], before: dict[Any, float] | None,
            seconds: float) -> dict[str, Any]:
    """Rates per API and per webhook outcome over `seconds`, latency percentiles (ms)."""
    def rate(key: Any) -> float:
        if before is None or seconds <= 0:
            return 0.0
        return max(0.0, now_totals.get(key, 0.0) - before.get(key, 0.0)) / seconds

    apis: dict[str, dict[str, float]] = {}
    for key in now_totals:
        if key[0] in ("evgate_requests_total", "evgate_records_in_total",
                      "evgate_records_out_total", "evgate_open_connections"):
            apis.setdefault(key[1], {})
    for api in apis:
        apis[api] = {
            "requests": rate(("evgate_requests_total", api)),
            "recordsIn": rate(("evgate_records_in_total", api)),
            "recordsOut": rate(("evgate_records_out_total", api)),
            "produceFailures": rate(("evgate_produce_failures_total", api)),
            "connections": now_totals.get(("evgate_open_connections", api), 0.0),
        }
    buckets = []
    for key, value in now_totals.items():
        if key[0] == "evgate_produce_latency_seconds_bucket" and before is not None:
            le = float("inf") if key[1] in ("+Inf", "inf") else float(key[1])
            buckets.append((le, value - before.get(key, 0.0)))
    buckets.sort()
    latency = {f"p{int(q * 100)}": (None if (p := _percentile(buckets, q)) is None
                                     or p == float("inf") else round(p * 1000, 2))
               for q in (0.5, 0.95, 0.99)}
    subscriptions: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in now_totals.items():
        if key[0] == "sub" and key[1]:
            subscriptions[key[1]][key[2]] = value
    return {
        "apis": apis, "latencyMs": latency,
        "webhooks": {"delivered": rate(("evgate_webhook_deliveries_total", "delivered")),
                     "dlq": rate(("evgate_webhook_deliveries_total", "dlq")),
                     "retries": rate(("evgate_webhook_retries_total", "-"))},
        "subscriptions": subscriptions,
    }


def snapshot() -> dict[str, Any]:
    config = current_app.extensions["evgate.config"]
    urls = node_urls(config)
    totals, nodes = scrape(urls)
    now = time.time()
    with _lock:
        before = _last.get("totals")
        then = _last.get("at", now)
        if before is None or now - then > 120:
            before, then = None, now
        if now - then >= 1.0 or before is None:
            _last.update(totals=totals, at=now)
        seconds = now - then
    data = summary(totals, before, seconds)
    from ..resources import services
    names = {api["id"]: api.get("name") or api["id"] for api in services().apis.list()}
    names["-"] = "(no API)"
    data.update(t=now, interval=seconds, nodes=nodes,
                names={api: names.get(api, api) for api in data["apis"]})
    return data


_deliveries: dict[str, Any] = {"at": 0.0, "counts": {}}
DELIVERY_CACHE_SECONDS = 5.0


def delivery_counts() -> dict[str, dict[str, float]]:
    """Webhook deliveries per subscription summed over the nodes (`delivered`, `dlq`,
    `retries`), for the subscription tables; read at most every few seconds per worker and
    with a short timeout, so a node that is down slows no page by more than a second."""
    now = time.monotonic()
    with _lock:
        if now - _deliveries["at"] < DELIVERY_CACHE_SECONDS:
            return _deliveries["counts"]
        _deliveries["at"] = now
    totals, _ = scrape(node_urls(current_app.extensions["evgate.config"]), timeout=1.0)
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in totals.items():
        if key[0] == "sub" and key[1]:
            counts[key[1]][key[2]] = value
    with _lock:
        _deliveries["counts"] = dict(counts)
    return _deliveries["counts"]


@bp.get("/charts")
def charts() -> str:
    _admin_only()
    return render_template("charts.html")


@bp.get("/charts/data.json")
def charts_data() -> Any:
    _admin_only()
    return jsonify(snapshot())


def _admin_only() -> None:
    """The charts name every API and webhook subscription of every owner: ADMIN only."""
    if not is_admin():
        abort(403, description="the charts show every API and subscription: ADMIN role "
                               "required")

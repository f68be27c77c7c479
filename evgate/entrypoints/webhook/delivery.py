"""One delivery loop per active webhook subscription on a worker (at-least-once).

It speaks only the plugin SPI (evgate/core/spi.py): the API endpoint's committed group stream
(`open_group_stream`, group = subscription id; Kafka's is a cooperative-sticky group member on
a native thread) and, for the DLQ, the DLQ endpoint's `publish`.

    endpoint group stream --GroupItems--> per-partition queues on the hub
        -> subscribe-phase policies (a dropped record is acknowledged)
        -> POST callbackUrl (sequential per partition; partitions concurrently, at most
           `maxConcurrentConnections` requests at a time)
        -> 2xx: `stream.commit(item)` (Kafka: the consumer thread commits offset + 1)
           5xx / 408 / 429 / timeout / connection error / attempt past the overall deadline
               (`webhook_delivery_timeout_ms`): retry the same record with exponential
               backoff and full jitter (forever, or `webhook_retry_max_attempts`)
           3xx (never followed) / other 4xx (or retries exhausted): produce the record to the
               DLQ when the entrypoint has `dlq`, then go on; without a DLQ the subscription
               is marked FAILURE with the reason and the loop stops (nothing after it is
               committed)
           callback address refused by the SSRF policy: FAILURE

Order per partition is kept because a partition's next record is not sent before the
previous one is settled; Gravitee forces one connection under at-least-once, evgate keeps
the per-partition order and still uses `maxConcurrentConnections` across partitions.
Memory is bounded: the stream pauses fetching while `webhook_max_pending` items are unsettled.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import gevent
import requests
from gevent.lock import BoundedSemaphore

from ...core.context import ExecutionContext
from ...core.ids import new_id
from ...core.message import (API_ATTRIBUTE, RECORD_KEY_ATTRIBUTE, SUBSCRIPTION_ATTRIBUTE,
                            TOPICS_ATTRIBUTE, Message)
from ...observability import metrics
from .http import AuthError, pinned_session
from .retry import Backoff
from .signing import signature_headers
from .ssrf import CallbackUrlRefused, SsrfPolicy
from .target import WebhookTarget, header_allowed, header_value

if TYPE_CHECKING:
    from ...core.spi import GroupStream, Pipeline
    from ...core.stream import GroupItem

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024   # a receiver's answer is read this far, never more
RETRIABLE_STATUSES = frozenset({408, 425, 429})


class SubscriptionFailed(Exception):
    """The subscription cannot go on (4xx without DLQ, refused target, bad configuration)."""


class DeadlineExceeded(Exception):
    """An attempt outlived `webhook_delivery_timeout_ms` (retriable, like a read timeout)."""


class _Outcome:
    __slots__ = ("ok", "retriable", "reason", "status", "retry_after")

    def __init__(self, ok: bool, retriable: bool = False, reason: str = "",
                 status: int | None = None, retry_after: float | None = None):
        self.ok, self.retriable, self.reason = ok, retriable, reason
        self.status, self.retry_after = status, retry_after


class _Partition:
    __slots__ = ("tp", "generation", "records", "greenlet")

    def __init__(self, tp: tuple[str, int], generation: int):
        self.tp = tp
        self.generation = generation
        self.records: deque[GroupItem] = deque()
        self.greenlet: gevent.Greenlet | None = None


def webhook_id(subscription_id: str, topic: str, partition: int, offset: int) -> str:
    """Stable across retries and workers: receivers dedupe at-least-once deliveries by it."""
    raw = f"{subscription_id}\x00{topic}\x00{partition}\x00{offset}".encode("utf-8")
    return "msg_" + hashlib.sha256(raw).hexdigest()[:32]


def _read_and_release(response: requests.Response) -> bytes:
    """Read at most MAX_RESPONSE_BYTES of the answer; a fully read answer gives its keep-alive
    connection back to the pool, a longer one closes it (a receiver cannot make us buffer)."""
    raw = response.raw
    try:
        data = raw.read(MAX_RESPONSE_BYTES + 1, decode_content=False)
    except Exception:  # noqa: BLE001 - the status is what counts; drop the connection
        response.close()
        return b""
    if len(data) > MAX_RESPONSE_BYTES:
        response.close()
        return data[:MAX_RESPONSE_BYTES]
    raw.release_conn()
    return data


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class DeliveryLoop:
    def __init__(self, runtime: Any, api: "Pipeline", entrypoint: Any,
                 subscription: dict[str, Any], policy: SsrfPolicy, backoff: Backoff,
                 max_pending: int):
        self.runtime = runtime
        self.api = api
        self.entrypoint = entrypoint
        self.subscription = subscription
        self.id: str = subscription["id"]
        self.backoff = backoff
        self.max_pending = max_pending
        self.target = WebhookTarget.build(subscription.get("configuration") or {},
                                          entrypoint.configuration, runtime.config)
        self.session = pinned_session(policy, self.target.max_connections)
        self._slots = BoundedSemaphore(self.target.max_connections)
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self.stream: GroupStream | None = None
        self.stopped = False
        self.failed: str | None = None
        self._failing_since: float | None = None
        self.stats = {"delivered": 0, "filtered": 0, "retried": 0, "dlq": 0}
        self.plan = next((p for p in api.plans if p.get("id") == subscription.get("plan_id")),
                         None)

    def __repr__(self) -> str:
        return f"<DeliveryLoop sub={self.id} api={self.api.id} {self.target!r}>"

    # -- lifecycle (hub) ---------------------------------------------------------------------
    def start(self) -> None:
        self.stream = self.api.endpoint.open_group_stream(
            self._context(), self.id, on_items=self._on_items, on_revoked=self._on_revoked,
            on_error=self._on_stream_error, max_pending=self.max_pending)
        logger.info("webhook delivery started: %r", self)

    def update_subscription(self, subscription: dict[str, Any]) -> None:
        """Metadata changes apply from the next record on (the EL reads #subscription)."""
        self.subscription = subscription

    def stop(self, timeout: float = 10.0) -> None:
        """Stop delivering now; commit what was delivered; leave the group. Never raises.
        Records in flight are not committed: the next owner re-delivers them."""
        if self.stopped:
            return
        self.stopped = True
        current = gevent.getcurrent()
        greenlets = [p.greenlet for p in self._partitions.values()
                     if p.greenlet is not None and p.greenlet is not current]
        gevent.killall(greenlets, block=True, timeout=timeout)
        self._partitions.clear()
        if self.stream is not None:
            self.stream.close(timeout)
        self.session.close()
        logger.info("webhook delivery stopped: %r (%s)", self, self.stats)

    # -- group stream callbacks (hub) --------------------------------------------------------
    def _on_items(self, items: list[GroupItem]) -> None:
        stream = self.stream
        if self.stopped or stream is None:
            if stream is not None:
                stream.release(len(items))
            return
        for item in items:
            tp, generation = item.partition_key, item.generation
            part = self._partitions.get(tp)
            if part is not None and part.generation != generation:
                if generation < part.generation:  # fetched before a rebalance: not ours now
                    stream.release(1)
                    continue
                self._discard(part)  # reassigned since: restart from the committed offset
                part = None
            if part is None:
                part = self._partitions[tp] = _Partition(tp, generation)
            part.records.append(item)
            if part.greenlet is None:
                part.greenlet = gevent.spawn(self._drain, part)

    def _on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        for tp in partitions:
            part = self._partitions.get(tp)
            if part is not None:
                self._discard(part)

    def _discard(self, part: _Partition) -> None:
        """Forget a partition's held records (and its in-flight one): every handed-over
        item is released exactly once, or the stream would stay paused for good."""
        if self._partitions.get(part.tp) is part:
            del self._partitions[part.tp]
        if part.greenlet is not None:
            part.greenlet.kill(block=False)
        if self.stream is not None and part.records:
            self.stream.release(len(part.records))
        part.records.clear()

    def _on_stream_error(self, text: str) -> None:
        logger.warning("webhook subscription %s: %s: %s", self.id, self.api.endpoint.type, text)

    # -- delivery (one greenlet per partition with records) ----------------------------------
    def _drain(self, part: _Partition) -> None:
        try:
            while part.records and not self.stopped:
                item = part.records[0]
                self._deliver(item)
                if self.stopped or self._partitions.get(part.tp) is not part:
                    return  # stopped or revoked meanwhile: not ours to commit
                part.records.popleft()
                assert self.stream is not None
                self.stream.commit(item)   # settled: delivered, filtered or dead-lettered
        except SubscriptionFailed as exc:
            self._fail(str(exc))
        except Exception:  # noqa: BLE001 - contained: stop this subscription, not the worker
            logger.exception("webhook subscription %s: unexpected error", self.id)
            self._fail("internal error in the delivery loop (see gateway log)")
        finally:
            part.greenlet = None

    def _context(self) -> ExecutionContext:
        ctx = ExecutionContext(api=self.api, plan=self.plan, subscription=self.subscription,
                               application_id=self.subscription.get("application_id"),
                               entrypoint_type="webhook")
        ctx.attributes[API_ATTRIBUTE] = self.api.id
        ctx.attributes[SUBSCRIPTION_ATTRIBUTE] = self.id
        return ctx

    def _deliver(self, item: GroupItem) -> None:
        message = item.message
        kept = self.api.subscribe_messages([message], self._context())
        if not kept:
            self.stats["filtered"] += 1
            metrics.webhook_outcome(self.id, "filtered")
            return  # dropped by a policy: acknowledged so the lag does not grow
        message = kept[0]
        attempt = 0
        while not self.stopped:
            attempt += 1
            outcome = self._attempt(message, item, attempt)
            if outcome.ok:
                self.stats["delivered"] += 1
                metrics.webhook_outcome(self.id, "delivered")
                metrics.records_out_tally(self.api.id, "webhook").n += 1
                self.runtime.deliveries.note(self.id)  # "last success" (gateway/last_delivery)
                if self._failing_since is not None:
                    logger.info("webhook subscription %s: delivering again after %.1fs",
                                self.id, time.monotonic() - self._failing_since)
                    self._failing_since = None
                return
            if outcome.retriable and not self.backoff.exhausted(attempt):
                self.stats["retried"] += 1
                metrics.webhook_retry(self.id)
                delay = self.backoff.delay(attempt)
                if outcome.retry_after is not None:
                    delay = max(delay, min(outcome.retry_after, self.backoff.max_s))
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    logger.warning("webhook subscription %s: %s; retrying with backoff",
                                   self.id, outcome.reason)
                else:
                    logger.debug("webhook subscription %s: %s (attempt %d), retry in %.2fs",
                                 self.id, outcome.reason, attempt, delay)
                gevent.sleep(delay)
                continue
            reason = outcome.reason
            if outcome.retriable:
                reason = f"gave up after {attempt} attempts: {reason}"
            self._undeliverable(item, reason, outcome.status)
            return

    def _attempt(self, message: Message, item: GroupItem, attempt: int) -> _Outcome:
        target = self.target
        body = message.content
        headers = self._headers(message, item, attempt, body)
        try:
            with self._slots:
                response, text = self._post_within_deadline(body, headers)
        except DeadlineExceeded as exc:
            return _Outcome(False, True, str(exc))
        except CallbackUrlRefused as exc:
            raise SubscriptionFailed(exc.message) from None
        except AuthError as exc:
            if exc.retriable:
                return _Outcome(False, True, str(exc))
            raise SubscriptionFailed(str(exc)) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
            raise SubscriptionFailed(f"callback request cannot be built: {exc}") from None
        except requests.exceptions.Timeout:
            return _Outcome(False, True, "callback timed out")
        except requests.exceptions.RequestException as exc:
            return _Outcome(False, True, f"callback unreachable ({type(exc).__name__})")
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome(True, status=status)
        snippet = text[:200].decode("utf-8", errors="replace").strip() if text else ""
        reason = f"callback answered {status}" + (f": {snippet}" if snippet else "")
        if status == 401 and target.auth.type == "oauth2" and attempt == 1:
            target.auth.invalidate()  # an expired token: fetch a new one and retry once now
            return _Outcome(False, True, reason, status, retry_after=0)
        if status >= 500 or status in RETRIABLE_STATUSES:
            return _Outcome(False, True, reason, status,
                            _retry_after(response.headers.get("Retry-After")))
        return _Outcome(False, False, reason, status)

    def _post_within_deadline(self, body: bytes, headers: dict[str, Any]
                              ) -> tuple[requests.Response, bytes]:
        """Authorize, POST and read the bounded answer within the target's overall deadline.
        Per-read timeouts alone let a receiver that drips a byte per read hold its partition
        forever; past the deadline the connection is closed (urllib3 discards a connection
        interrupted mid-request, the answer's is closed here) and DeadlineExceeded raised."""
        target = self.target
        response: requests.Response | None = None
        timer = gevent.Timeout(target.deadline_s)
        timer.start()
        try:
            authorization = target.auth.header(self.session, target.timeout)
            if authorization:
                headers["Authorization"] = authorization
            response = self.session.post(target.url, data=body, headers=headers,
                                         timeout=target.timeout, allow_redirects=False,
                                         stream=True)
            return response, _read_and_release(response)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            if response is not None:
                response.close()
            raise DeadlineExceeded(f"callback did not answer within the "
                                   f"{target.deadline_s:g}s delivery deadline") from None
        finally:
            timer.close()

    def _headers(self, message: Message, item: GroupItem, attempt: int, body: bytes
                 ) -> dict[str, Any]:
        headers: dict[str, Any] = {}
        for name, values in message.headers.items():
            if not header_allowed(name) or name.lower() == "authorization" or not values:
                continue
            value = header_value(", ".join(values))
            if value is not None:
                headers[name] = value
        headers.update(self.target.headers)
        headers["X-Evgate-Subscription-Id"] = self.id
        headers["X-Evgate-Topic"] = item.topic
        headers["X-Evgate-Partition"] = str(item.partition)
        headers["X-Evgate-Offset"] = str(item.offset)
        headers["X-Evgate-Attempt"] = str(attempt)
        msg_id = webhook_id(self.id, item.topic, item.partition, item.offset)
        if self.target.signing_key is not None:
            headers.update(signature_headers(self.target.signing_key, msg_id, body))
        else:
            headers["webhook-id"] = msg_id
        return headers

    # -- failures ----------------------------------------------------------------------------
    def _undeliverable(self, item: GroupItem, reason: str, status: int | None) -> None:
        dlq = self.entrypoint.definition.dlq
        if not dlq:
            raise SubscriptionFailed(reason)
        destination = dlq_destination(self.api, dlq)
        if destination is None:
            raise SubscriptionFailed(f"{reason} (and the dlq endpoint "
                                     f"{dlq.get('endpoint')!r} cannot publish or names no "
                                     "topic)")
        endpoint, topic = destination
        headers: dict[str, list[Any]] = {}
        for name, value in item.headers or ():
            headers.setdefault(name, []).append(value)   # as stored: bytes, not decoded
        for name, value in (("x-evgate-dlq-reason", reason.encode("utf-8")[:1000]),
                            ("x-evgate-dlq-subscription", self.id.encode("utf-8")),
                            ("x-evgate-dlq-source", item.position.encode("utf-8"))):
            headers.setdefault(name, []).append(value)
        if status is not None:
            headers.setdefault("x-evgate-dlq-status", []).append(str(status).encode("ascii"))
        value = item.value
        # the record as it came (key, value or tombstone, headers), through the DLQ endpoint's
        # publish like any other message: one produce path, its metrics and its timeout
        attributes: dict[str, Any] = {RECORD_KEY_ATTRIBUTE: item.key}
        if topic is not None:
            attributes[TOPICS_ATTRIBUTE] = [topic]
        message = Message(content=value if value is not None else b"", headers=headers,
                          attributes=attributes, id=new_id(), tombstone=value is None)
        ctx = self._context()
        attempt = 0
        while not self.stopped:
            attempt += 1
            outcome = endpoint.publish([message], ctx)[0]
            if not isinstance(outcome, Exception):
                self.stats["dlq"] += 1
                metrics.webhook_outcome(self.id, "dlq")
                logger.warning("webhook subscription %s: %s; record %s sent to DLQ "
                               "topic %s", self.id, reason, item.position, topic)
                return
            logger.warning("webhook subscription %s: DLQ produce failed (%s); retrying",
                           self.id, outcome)
            gevent.sleep(self.backoff.delay(attempt))

    def _fail(self, reason: str) -> None:
        if self.failed is not None or self.stopped:
            return
        self.failed = reason
        logger.error("webhook subscription %s FAILED: %s", self.id, reason)
        repo = self.runtime.repo
        if repo is not None:
            try:
                repo.subscriptions.mark_failure(self.id, reason)
            except Exception:  # noqa: BLE001 - the loop stops anyway; the log has the reason
                logger.exception("could not record FAILURE of subscription %s", self.id)
        gevent.spawn(self.stop)


def dlq_destination(api: Any, dlq: dict[str, Any]) -> tuple[Any, str | None] | None:
    """(endpoint, topic) of the DLQ: `dlq.endpoint` names an endpoint group or an endpoint of
    the API that can publish; an endpoint with topics (kafka) sends the records to its first
    topic (or `dlq.topic`) and must have one, an endpoint without (mock) takes them as they
    are (topic None). The endpoint is the deployment's (built and started once per API,
    evgate/gateway/deployment.py)."""
    endpoint = api.endpoint_named(dlq.get("endpoint"))
    if endpoint is None or not endpoint.can_publish:
        return None
    topics = getattr(endpoint, "topics", None)
    if topics is None:
        return endpoint, None
    topic = dlq.get("topic") or next(iter(topics), None)
    return (endpoint, topic) if topic else None

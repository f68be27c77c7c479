"""The kafka endpoint: produce records (publish) and consume them (subscribe).

Produce: one record per message and topic, record key from the message attribute
`gravitee.attribute.kafka.recordKey` (the http-post entrypoint sets it from the `X-Kafka-Key`
request header), else the message id; topics from the attribute
`gravitee.attribute.kafka.topics` (comma separated), else the definition's topics; message
headers become record headers. Topics: Gravitee 4.x puts them per side (`producer.topics`,
`consumer.topics`), 3.20 beside them (`topics`); a side's own list wins. The producer is the worker's shared one (acks=all, idempotent).
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Optional, Sequence, Union

from pydantic import Field, SkipValidation

from ..definition.plugin_config import (PluginConfiguration, Problems, Secret, checked,
                                        must_be)
from ..errors import BackendUnavailableError, BadRequestError
from ..core.ids import new_id, new_ids
from ..core.process import current_pid
from ..kafka import cursor as cursors
from ..kafka.client_config import producer_config
from ..kafka.group_consumer import GroupConsumer, group_consumer_config
from ..kafka.security import MASK, JaasError, mask_jaas, parse_jaas
from ..kafka.security import problems as security_problems
from ..kafka.producer import ProduceError
from ..core.message import GROUP_ID_ATTRIBUTE, RECORD_KEY_ATTRIBUTE, TOPICS_ATTRIBUTE, Message
from ..observability import metrics
from .base import Endpoint
from ..core.stream import GroupItem, Subscription

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)




# -- configuration ----------------------------------------------------------------------------
def _jaas_is_masked(value: str) -> bool:
    """A JAAS string sent back with password="****" (its username may have changed)."""
    try:
        return parse_jaas(value).options.get("password") == MASK
    except JaasError:
        return False


def _jaas_unmask(value: str, stored: str) -> str | None:
    """`value` with the stored JAAS string's password; None when the stored one has none."""
    try:
        password = parse_jaas(stored).options.get("password")
    except JaasError:
        return None
    if password is None or password == MASK:
        return None
    jaas = parse_jaas(value)
    jaas.options["password"] = password
    return jaas.format()


#: Kafka secrets go to the endpoint's brokers: **** keeps them only while those stay the same.
KAFKA_SECRET = Secret(sent_to=(("bootstrapServers",),))
SecretText = Annotated[Optional[str], KAFKA_SECRET]
Text = Optional[str]


class KafkaSasl(PluginConfiguration):
    saslMechanism: Text = None
    saslJaasConfig: Annotated[Optional[str], Secret(
        sent_to=KAFKA_SECRET.sent_to, mask=mask_jaas, is_masked=_jaas_is_masked,
        unmask=_jaas_unmask)] = None


class KafkaTrustStore(PluginConfiguration):
    """PEM or PKCS#12 certificates: `location` (`path`) of a file on the gateway or inline
    `content` (`certificates`)."""
    type: Text = None
    location: Text = None
    path: Text = None
    content: Text = None
    certificates: Text = None
    password: SecretText = None
    keyPassword: SecretText = None
    key: SecretText = None
    keyContent: SecretText = None


class KafkaKeyStore(KafkaTrustStore):
    """The client's certificate and key: one PEM or PKCS#12 (`location` or inline `content`,
    which then holds the private key), or a PEM certificate + key pair."""
    content: SecretText = None
    certificates: SecretText = None
    certificateLocation: Text = None
    certificateChain: Text = None
    keyLocation: Text = None


class KafkaSsl(PluginConfiguration):
    trustStore: Optional[KafkaTrustStore] = None
    keyStore: Optional[KafkaKeyStore] = None
    hostnameVerifier: Optional[bool] = None


class KafkaSecurity(PluginConfiguration):
    protocol: Optional[Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]] = None
    sasl: Optional[KafkaSasl] = None
    ssl: Optional[KafkaSsl] = None


TopicNames = Annotated[Optional[list[Annotated[str, Field(strict=True, min_length=1)]]],
                      checked("must be a list of topic names")]


class KafkaSide(PluginConfiguration):
    """The producer or consumer side: `enabled`, its own `topics` (Gravitee 4.x: a side's list
    wins over the shared one), and for the consumer `autoOffsetReset`."""
    enabled: Optional[bool] = None
    topics: TopicNames = None
    autoOffsetReset: Optional[Literal["earliest", "latest"]] = None


Side = Annotated[Optional[KafkaSide], SkipValidation, must_be(dict, "must be an object")]


class KafkaConfiguration(PluginConfiguration):
    bootstrapServers: Annotated[Optional[Union[str, list[Any]]],
                                must_be((str, list), "must be a string host:port[,host:port]")
                                ] = None
    topics: TopicNames = None
    producer: Side = None
    consumer: Side = None
    # protocol, SASL mechanism + parsed saslJaasConfig, store shapes (no file access here:
    # the files live on the gateways): checked by evgate/kafka/security/, not by the types
    security: Annotated[Optional[KafkaSecurity], SkipValidation,
                        Problems(security_problems)] = None


class KafkaEndpoint(Endpoint):
    type = "kafka"
    configuration_model = KafkaConfiguration
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        producer = self.configuration.get("producer") or {}
        consumer = self.configuration.get("consumer") or {}
        shared = list(self.configuration.get("topics") or [])
        #: what it consumes (`self.topics`) and what it produces to
        self.topics: list[str] = list(consumer.get("topics") or shared)
        self.producer_topics: list[str] = list(producer.get("topics") or shared)
        self.producer_enabled = producer.get("enabled", True) is not False
        self.consumer_enabled = consumer.get("enabled", True) is not False
        self._producer_conf: dict[str, Any] | None = None
        self._bridge: Any = None

    @property
    def can_publish(self) -> bool:
        return self.producer_enabled

    @property
    def can_subscribe(self) -> bool:
        return self.consumer_enabled

    @property
    def can_group_stream(self) -> bool:
        return self.consumer_enabled

    def _producer(self):
        """The worker's shared producer for this endpoint's configuration, cached here: building
        the librdkafka config and its pool key on every request cost ~10 us (bench/ingest.py)."""
        bridge = self._bridge
        if bridge is None or not bridge.running or bridge.pid != current_pid():
            if self._producer_conf is None:
                self._producer_conf = producer_config(self.configuration, self.runtime.config)
            bridge = self._bridge = self.runtime.producers.get(self._producer_conf)
        return bridge

    def _topics_for(self, message: "Message") -> list[str]:
        override = message.attributes.get(TOPICS_ATTRIBUTE)
        if override:
            if isinstance(override, str):
                return [t.strip() for t in override.split(",") if t.strip()]
            return list(override)
        return self.producer_topics

    def publish(self, messages: Sequence["Message"], ctx: "ExecutionContext") -> list[Any]:
        if not self.producer_enabled:
            raise BackendUnavailableError("the kafka endpoint of this API does not produce",
                                          retry_after=60)
        records: list[tuple[str, bytes, Any, Any]] = []
        owners: list[int] = []
        results: list[Any] = [None] * len(messages)
        for index, message in enumerate(messages):
            topics = self._topics_for(message)
            if not topics:
                results[index] = ProduceError("no topic configured for this API",
                                              retriable=False)
                continue
            key = message.attributes.get(RECORD_KEY_ATTRIBUTE) or message.id
            # text headers are encoded; bytes (a record forwarded as stored: the webhook DLQ)
            # and None go as they are
            headers = [(name, value.encode("utf-8") if isinstance(value, str) else value)
                       for name, values in message.headers.items() for value in values]
            value = None if message.tombstone else message.content
            for topic in topics:
                records.append((topic, value, key, headers))
                owners.append(index)
        if not records:
            return results
        outcomes = self._produce(records, ctx)
        # A message succeeds when every topic acknowledged it; the first failure wins.
        for index, outcome in zip(owners, outcomes):
            current = results[index]
            if isinstance(current, Exception):
                continue
            results[index] = outcome if isinstance(outcome, Exception) else (current or outcome)
        return results

    def publish_contents(self, contents: Sequence[bytes], ctx: "ExecutionContext", *,
                         key: str | None, headers: Sequence[tuple[str, str]]) -> list[Any]:
        """`publish` for payloads that share one key and header list and carry no message
        attributes (batch ingestion when no publish-phase policy runs): the same records as
        `publish` of one Message per payload, without building the Messages (bench/ingest.py).
        Without `key`, each record is keyed by a fresh message id, as `publish` does."""
        topics = self.producer_topics
        if not self.producer_enabled or len(topics) != 1:
            messages = []
            for content in contents:
                message = Message(content=content, id=new_id())
                for name, value in headers:
                    message.headers.setdefault(name, []).append(value)
                if key:
                    message.attributes[RECORD_KEY_ATTRIBUTE] = key
                messages.append(message)
            return self.publish(messages, ctx)
        topic = topics[0]
        record_headers = [(name, value.encode("utf-8")) for name, value in headers] or None
        if key:
            records = [(topic, content, key, record_headers) for content in contents]
        else:
            records = [(topic, content, record_key, record_headers)
                       for content, record_key in zip(contents, new_ids(len(contents)))]
        return self._produce(records, ctx)

    def _produce(self, records: list[tuple[str, bytes, Any, Any]],
                 ctx: "ExecutionContext") -> list[Any]:
        """Produce and wait for every acknowledgement (or the timeout); one outcome per record."""
        timeout = self.runtime.config.produce_timeout_ms / 1000 + 2
        started = time.monotonic()
        # the bridge answers "no acknowledgement from Kafka in time" after `timeout` (one
        # sweeping greenlet, not a gevent Timeout per request)
        outcomes = self._producer().produce_many(records, timeout=timeout).get()
        failed = sum(1 for outcome in outcomes if isinstance(outcome, Exception))
        metrics.record_produce(self.api_id, ctx.entrypoint_type, time.monotonic() - started,
                               len(outcomes) - failed, failed)
        return outcomes

    # -- consume side -------------------------------------------------------------------------
    def subscribe(self, ctx: "ExecutionContext", *, cursor: str | None, qos: str,
                  capacity: int, client_id: str | None = None) -> Subscription:
        """A stream from the worker's consumer pool (evgate/kafka/consumer_pool.py).

        No client identifier: the client reads every record; without a cursor it joins the
        shared live tail (or, with `consumer.autoOffsetReset: earliest`, reads from the
        beginning), with one it resumes right after it. With a client identifier the clients
        sharing it form one consumer group (each record to one of them); the group's committed
        offsets are its resume point and a cursor is only checked, not used. QoS `none` ignores
        the cursor (new messages only)."""
        if not self.consumer_enabled:
            raise BackendUnavailableError("the kafka endpoint of this API does not consume",
                                          retry_after=60)
        if not self.topics:
            raise BadRequestError("the kafka endpoint of this API names no topic",
                                  key="NO_TOPIC")
        position = None
        if cursor is not None:
            try:
                position = cursors.parse(cursor, self.topics)
            except cursors.CursorError as exc:
                raise BadRequestError(f"invalid message id / cursor: {exc}",
                                      key="INVALID_CURSOR") from None
        consumer = self.configuration.get("consumer") or {}
        reset = str(consumer.get("autoOffsetReset") or "latest").lower()
        if qos == "none":
            position = None
        elif position is None and reset == "earliest":
            position = {}
        group_id = None
        if client_id is not None:
            group_id = ctx.attributes.get(GROUP_ID_ATTRIBUTE) or client_id
        label = (f"api={self.api_id} tx={ctx.transaction_id} "
                 f"client={getattr(ctx.request, 'remote_addr', None)}")
        return self.runtime.consumer_pool.subscribe(
            self.configuration, self.topics, position=position, group_id=group_id, qos=qos,
            capacity=capacity, label=label, auto_offset_reset=reset, api_id=self.api_id)

    def join_stream(self, ctx: "ExecutionContext", cursor: str, capacity: int,
                    min_records: int = 0) -> Subscription | None:
        """A stream right after `cursor` on a reader already running there that holds the
        next `min_records` records, or None: never a new reader, never a wait (an http-get
        page built ahead, evgate/entrypoints/http_get.py)."""
        if not self.consumer_enabled or not self.topics:
            return None
        try:
            position = cursors.parse(cursor, self.topics)
        except cursors.CursorError:
            return None
        return self.runtime.consumer_pool.join(
            self.configuration, self.topics, position, capacity=capacity,
            label=f"api={self.api_id} tx={ctx.transaction_id} prefetch",
            min_records=min_records)

    @property
    def page_cache(self) -> Any:
        """The worker's pages built ahead (core/stream.py PageCache)."""
        return self.runtime.consumer_pool.pages

    def open_group_stream(self, ctx: "ExecutionContext", group_id: str, *,
                          on_items: Callable[[list[GroupItem]], None],
                          on_revoked: Callable[[list[tuple[str, int]]], None],
                          on_error: Callable[[str], None],
                          max_pending: int) -> GroupConsumer:
        """A member of the consumer group `group_id` on its own native thread
        (evgate/kafka/group_consumer.py): cooperative-sticky assignment, manual commits of
        committed items only, fetching paused while `max_pending` items are unsettled."""
        if not self.consumer_enabled:
            raise BackendUnavailableError("the kafka endpoint of this API does not consume",
                                          retry_after=60)
        conf = group_consumer_config(self.configuration, self.runtime.config, group_id)
        return GroupConsumer(conf, self.topics, name=f"{ctx.entrypoint_type}-{group_id}",
                             on_records=on_items, on_revoked=on_revoked, on_error=on_error,
                             max_outstanding=max_pending)

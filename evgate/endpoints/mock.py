"""The mock endpoint: a real, registered endpoint that invents messages (httpx's MockTransport
habit). Used by the seed's `/demo/sse` and `/demo/ws` examples and by unit tests.

Configuration (Gravitee's): `messageInterval` ms between messages (1000), `messageContent`
("mock message"), `messageCount` (null = endless), `headers` ({name: value}), `metadata`
({name: value}). Each subscriber gets its own sequence with ids "0", "1", ...; a client that
resumes with Last-Event-ID / cursor "N" continues at N+1. Publishing is accepted and dropped
(every message acknowledged), so a publish path can be tried without Kafka.

Group streams (the webhook entrypoint) read the same sequence as one partition `mock[0]` and
remember each group's committed position on this endpoint (per worker, in memory): a group
opened again resumes after its last commit, as a Kafka group would, so webhook delivery runs
(and is unit-tested) without Kafka.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Sequence, Union

import gevent
from gevent.event import Event
from pydantic import Field

from ..definition.plugin_config import PluginConfiguration, checked, integer, must_be
from ..errors import BadRequestError
from ..core.outcomes import Delivered
from ..core.message import Message
from .base import Endpoint
from ..core.stream import GroupItem, StreamItem, Subscription

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)


#: `{name: value}` (a list of `[name, value]` pairs is accepted too)
NameValues = Annotated[Optional[Union[dict[str, Any], list[Any]]],
                       must_be((dict, list), "must be an object of name: value")]

IntervalMs = integer(0, "must be a number of milliseconds >= 0")
Count = integer(0, "must be null (endless) or an integer >= 0")


class MockConfiguration(PluginConfiguration):
    messageInterval: IntervalMs = None
    messageCount: Count = None
    messageContent: Annotated[Optional[str], Field(strict=True),
                              checked("must be a string")] = None
    headers: NameValues = None
    metadata: NameValues = None


class MockEndpoint(Endpoint):
    type = "mock"
    configuration_model = MockConfiguration
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        conf = self.configuration
        self.interval = (conf.get("messageInterval") if conf.get("messageInterval") is not None
                         else 1000) / 1000
        self.content = conf.get("messageContent")
        if self.content is None:
            self.content = "mock message"
        self.count = conf.get("messageCount")
        self.headers = _pairs(conf.get("headers"))
        self.metadata = dict(_pairs(conf.get("metadata")))
        self._greenlets: set[gevent.Greenlet] = set()
        #: group id -> next offset to read (the committed position) / number of commits
        self.committed: dict[str, int] = {}
        self.commits: Counter[str] = Counter()
        self._generation = 0

    @property
    def can_publish(self) -> bool:
        return True

    @property
    def can_subscribe(self) -> bool:
        return True

    @property
    def can_group_stream(self) -> bool:
        return True

    def publish(self, messages: Sequence[Message], ctx: "ExecutionContext") -> list[Any]:
        return [Delivered("mock", 0, -1) for _ in messages]

    @staticmethod
    def parse_cursor(cursor: str) -> int:
        text = cursor.strip()
        if not text.isdigit() or len(text) > 18:
            raise BadRequestError(f"invalid message id {cursor[:40]!r}: the mock endpoint's ids "
                                  "are 0, 1, 2, ...", key="INVALID_CURSOR")
        return int(text)

    def message(self, index: int) -> Message:
        message = Message(content=self.content.encode("utf-8"), id=str(index),
                          metadata=dict(self.metadata))
        for name, value in self.headers:
            message.add_header(name, value)
        return message

    def subscribe(self, ctx: "ExecutionContext", *, cursor: str | None, qos: str,
                  capacity: int, client_id: str | None = None) -> Subscription:
        first = 0
        if cursor is not None and qos != "none":
            first = self.parse_cursor(cursor) + 1
        subscription = Subscription(capacity, f"mock api={self.api_id} tx={ctx.transaction_id}",
                                    start_cursor=str(first - 1) if first else None)
        greenlet = gevent.spawn(self._run, subscription, first)
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)
        subscription.add_close_callback(lambda _s: greenlet.kill(block=False))
        return subscription

    def _run(self, subscription: Subscription, index: int) -> None:
        while self.count is None or index < self.count:
            if subscription.closed is not None:
                return
            if not subscription.offer(StreamItem(self.message(index), str(index))):
                return
            index += 1
            gevent.sleep(max(self.interval, 0.001))  # positive: gevent.sleep(0) starves timers
        subscription.close("end", "the mock endpoint sent its messageCount messages")

    def open_group_stream(self, ctx: "ExecutionContext", group_id: str, *,
                          on_items: Callable[[list[GroupItem]], None],
                          on_revoked: Callable[[list[tuple[str, int]]], None],
                          on_error: Callable[[str], None],
                          max_pending: int) -> "MockGroupStream":
        self._generation += 1
        stream = MockGroupStream(self, group_id, self._generation, on_items, max_pending)
        greenlet = gevent.spawn(stream.run)
        stream.greenlet = greenlet
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)
        return stream

    def group_item(self, index: int, generation: int) -> GroupItem:
        value = self.content.encode("utf-8")
        return GroupItem("mock", 0, index, generation, value=value,
                         headers=[(name, v.encode("utf-8")) for name, v in self.headers],
                         source=index, build=self._group_message)

    def _group_message(self, index: int, position: str) -> Message:
        message = self.message(index)
        message.id = position
        return message

    def stop(self) -> None:
        for greenlet in list(self._greenlets):
            greenlet.kill(block=False)


class MockGroupStream:
    """One member of a mock consumer group (evgate/core/spi.py `GroupStream`): the endpoint's
    sequence from the group's committed position on, one item per `messageInterval`, paused
    while `max_pending` items are neither committed nor released (resumed at half)."""

    def __init__(self, endpoint: MockEndpoint, group_id: str, generation: int,
                 on_items: Callable[[list[GroupItem]], None], max_pending: int):
        self.endpoint = endpoint
        self.group_id = group_id
        self.generation = generation
        self.on_items = on_items
        self.max_pending = max(1, max_pending)
        self.outstanding = 0
        self.closed = False
        self.greenlet: gevent.Greenlet | None = None
        self._room = Event()
        self._room.set()

    def run(self) -> None:
        endpoint = self.endpoint
        index = endpoint.committed.get(self.group_id, 0)
        while not self.closed and (endpoint.count is None or index < endpoint.count):
            if self.outstanding >= self.max_pending:
                self._room.clear()
                self._room.wait()
                continue
            self.outstanding += 1
            self.on_items([endpoint.group_item(index, self.generation)])
            index += 1
            gevent.sleep(max(endpoint.interval, 0.001))  # positive: gevent#1071

    def commit(self, item: GroupItem) -> None:
        if not self.closed and item.generation == self.generation:
            committed = self.endpoint.committed
            committed[self.group_id] = max(committed.get(self.group_id, 0), item.offset + 1)
            self.endpoint.commits[self.group_id] += 1
        self.release(1)

    def release(self, count: int = 1) -> None:
        self.outstanding = max(0, self.outstanding - count)
        if self.outstanding <= self.max_pending // 2:
            self._room.set()

    def close(self, timeout: float = 10.0) -> None:
        self.closed = True
        if self.greenlet is not None and self.greenlet is not gevent.getcurrent():
            self.greenlet.kill(block=False)


def _pairs(value: Any) -> list[tuple[str, str]]:
    """Gravitee writes headers/metadata as {name: value} or [{name, value}]."""
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(item.get("name") or item.get("key")), str(item.get("value")))
                for item in value if isinstance(item, dict)]
    return []

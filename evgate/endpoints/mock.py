"""The mock endpoint: a real, registered endpoint that invents messages (httpx's MockTransport
habit). Used by the seed's `/demo/sse` and `/demo/ws` examples and by unit tests.

Configuration (Gravitee's): `messageInterval` ms between messages (1000), `messageContent`
("mock message"), `messageCount` (null = endless), `headers` ({name: value}), `metadata`
({name: value}). Each subscriber gets its own sequence with ids "0", "1", ...; a client that
resumes with Last-Event-ID / cursor "N" continues at N+1. Publishing is accepted and dropped
(every message acknowledged), so a publish path can be tried without Kafka.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Optional, Sequence, Union

import gevent
from pydantic import Field

from ..definition.plugin_config import PluginConfiguration, checked, integer, must_be
from ..errors import BadRequestError
from ..core.outcomes import Delivered
from ..core.message import Message
from .base import Endpoint
from ..core.stream import StreamItem, Subscription

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

    @property
    def can_publish(self) -> bool:
        return True

    @property
    def can_subscribe(self) -> bool:
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

    def stop(self) -> None:
        for greenlet in list(self._greenlets):
            greenlet.kill(block=False)


def _pairs(value: Any) -> list[tuple[str, str]]:
    """Gravitee writes headers/metadata as {name: value} or [{name, value}]."""
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(item.get("name") or item.get("key")), str(item.get("value")))
                for item in value if isinstance(item, dict)]
    return []

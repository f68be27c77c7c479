"""What publishing one message came to: `Delivered` or a `PublishFailed` exception.

Endpoints return one outcome per message sent (`Endpoint.publish`); entrypoints map them to a
status code or a frame by `retriable` and `too_large` (aiokafka's habit: attributes rather
than lists of backend error classes), so no entrypoint needs to know the backend's codes.
"""
from __future__ import annotations

from typing import NamedTuple


class Delivered(NamedTuple):
    """Where the backend stored a message. A NamedTuple rather than a frozen dataclass: the
    Kafka producer builds one per acknowledged record on its poll thread, ~3x cheaper."""

    topic: str
    partition: int
    offset: int


class PublishFailed(Exception):
    """The backend did not take a message. `retriable`: trying again later may work (503);
    `too_large`: the backend refuses the message's size (413); neither: refused (502)."""

    def __init__(self, reason: object, *, retriable: bool = True, too_large: bool = False):
        self.retriable = retriable
        self.too_large = too_large
        super().__init__(str(reason))


Outcome = Delivered | Exception

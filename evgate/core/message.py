"""The unit that flows through evgate: one record, one frame, one webhook call."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

#: the record key a message asks the endpoint for (set by http-post from X-Kafka-Key, or by
#: the assign-attributes policy)
RECORD_KEY_ATTRIBUTE = "gravitee.attribute.kafka.recordKey"
#: comma-separated topics a message asks the endpoint to publish to instead of the definition's
TOPICS_ATTRIBUTE = "gravitee.attribute.kafka.topics"
#: the consumer group a subscription's context asks for (X-Gravitee-Client-Identifier)
GROUP_ID_ATTRIBUTE = "gravitee.attribute.kafka.groupId"
#: the listener-relative path of the request, and the API and subscription ids
RELATIVE_PATH_ATTRIBUTE = "gravitee.attribute.request.relativePath"
API_ATTRIBUTE = "gravitee.attribute.api"
SUBSCRIPTION_ATTRIBUTE = "gravitee.attribute.subscription"


@dataclass
class Message:
    """A message between an entrypoint and an endpoint.

    `content` is bytes (what Kafka stores); `headers` are multi-valued like HTTP and Kafka
    headers (name -> list of str); `metadata` is what the endpoint knows about the record
    (for Kafka: key, topic, partition, offset); `attributes` carry per-message settings such as
    `gravitee.attribute.kafka.recordKey`. `tombstone`: the record had a null value (a
    deletion on a compacted topic; `content` is then empty), evgate/kafka/records.py.
    """

    content: bytes = b""
    headers: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    error: bool = False
    tombstone: bool = False

    def add_header(self, name: str, value: str) -> None:
        self.headers.setdefault(name, []).append(value)

    def header(self, name: str) -> str | None:
        """First value of a header, looked up case-insensitively."""
        lowered = name.lower()
        for key, values in self.headers.items():
            if key.lower() == lowered and values:
                return values[0]
        return None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def el_properties(self) -> Mapping[str, Any]:
        """What the expression language may read from `#message` (a whitelist, never getattr)."""
        return {
            "id": self.id,
            "content": self.content,
            "headers": self.headers,
            "metadata": self.metadata,
            "attributes": self.attributes,
            "error": self.error,
            "tombstone": self.tombstone,
        }

    def __repr__(self) -> str:
        return f"<Message id={self.id!r} size={len(self.content)} headers={len(self.headers)}>"

"""Per-worker pool of Kafka clients, keyed by their librdkafka configuration.

Clients are created lazily on first use, in the worker (after gunicorn forked), never in the
master: a client carries native threads and sockets that do not survive a fork. A pool noticed
in a process other than the one that created it is discarded, not closed.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from .producer import KafkaProducerBridge

logger = logging.getLogger(__name__)


def _key(conf: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in conf.items()))


class ProducerPool:
    def __init__(self) -> None:
        self._pid = os.getpid()
        self._producers: dict[tuple, KafkaProducerBridge] = {}

    def get(self, conf: dict[str, Any]) -> KafkaProducerBridge:
        if os.getpid() != self._pid:  # forked: the parent's clients are not ours
            self._pid, self._producers = os.getpid(), {}
        key = _key(conf)
        producer = self._producers.get(key)
        if producer is None:
            producer = KafkaProducerBridge(conf, name=f"p{len(self._producers)}")
            self._producers[key] = producer
        return producer

    def close(self, timeout: float = 10.0) -> None:
        producers, self._producers = list(self._producers.values()), {}
        for producer in producers:
            producer.close(timeout)


producers = ProducerPool()

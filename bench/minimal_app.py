"""The minimal acknowledged-produce route of bench/ingest.py (issue 11): what this stack
(gunicorn gevent worker + Flask + confluent-kafka) does with evgate's safety and nothing else.

One Producer per worker (acks=all, idempotence, lz4, linger.ms 1); `on_delivery` appends
(AsyncResult, error) to a list; a native thread loops poll(0.1) and hands each non-empty batch
to the hub with one `run_callback_threadsafe`; the handler waits: 202 once acked, 503 if not.
Topic and bootstrap come from BENCH_MINIMAL_TOPIC / EVGATE_KAFKA_BOOTSTRAP.
"""
import os

import gevent
from confluent_kafka import Producer
from flask import Flask, Response, request
from gevent.event import AsyncResult
from gevent.monkey import get_original

app = Flask("evgate.bench.minimal")
TOPIC = os.environ.get("BENCH_MINIMAL_TOPIC", "bench-minimal")
_state = {}


def _producer():
    """Created lazily in the worker (after the fork), with its poll thread."""
    if _state.get("pid") != os.getpid():
        producer = Producer({"bootstrap.servers": os.environ.get("EVGATE_KAFKA_BOOTSTRAP",
                                                                 "127.0.0.1:9092"),
                             "acks": "all", "enable.idempotence": True,
                             "compression.type": "lz4", "linger.ms": 1})
        settled, run = [], gevent.get_hub().loop.run_callback_threadsafe

        def hand_over(batch):
            for result, error in batch:
                result.set(error)

        def loop():
            nonlocal settled
            while True:
                producer.poll(0.1)
                if settled:
                    batch, settled = settled, []
                    run(hand_over, batch)

        get_original("_thread", "start_new_thread")(loop, ())
        _state.update(pid=os.getpid(), producer=producer,
                      on_delivery=lambda result: lambda err, _msg: settled.append((result, err)))
    return _state["producer"], _state["on_delivery"]


@app.route("/ingest", methods=["POST"])
def ingest() -> Response:
    producer, on_delivery = _producer()
    result = AsyncResult()
    producer.produce(TOPIC, request.get_data(), on_delivery=on_delivery(result))
    error = result.get()
    return Response(b"", status=503 if error else 202, content_type="text/plain")

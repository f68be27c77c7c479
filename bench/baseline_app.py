"""The baseline of bench/ingest.py: a bare Flask route that reads the body and answers 202.

It runs under the very same gunicorn configuration as the gateway
(`gunicorn -c gunicorn.conf.py bench.baseline_app:app`), so the ratio gateway/baseline
measures what evgate adds on top of Flask + gevent: routing, the entrypoint, the flow chain
and the acknowledged produce to Kafka. Reading the body is part of any ingestion route.
"""
from flask import Flask, Response, request

app = Flask("evgate.bench.baseline")


@app.route("/ingest", methods=["POST"])
def ingest() -> Response:
    request.get_data()
    return Response(b"", status=202, content_type="text/plain")

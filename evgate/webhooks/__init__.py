"""Webhook delivery: per-subscription Kafka consumer groups POSTing each record to a callback.

    dispatcher.py  per-worker manager: reacts to runtime snapshots, starts/stops loops
    delivery.py    one delivery loop per active subscription (at-least-once, ordered per
                   partition, retries, DLQ, FAILURE)
    http.py        the HTTP client: pinned-address connections (SSRF), auth, timeouts
    signing.py     Standard Webhooks signatures
    ssrf.py        the allow/deny policy for callback targets
    retry.py       exponential backoff with full jitter

See docs/webhooks.md.
"""

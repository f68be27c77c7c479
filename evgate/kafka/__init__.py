"""The gevent <-> librdkafka bridge.

librdkafka calls that block (poll with a timeout, flush, consume) would freeze the gevent hub
and every connection on the worker. Each Kafka client therefore gets one native OS thread
that does the blocking calls; results cross back to the hub with
`hub.loop.run_callback_threadsafe`, so only the hub thread touches gevent objects
(see docs/architecture.md).
"""

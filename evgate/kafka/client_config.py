"""librdkafka configuration built from a kafka endpoint definition and the gateway settings.

The definition speaks Gravitee (bootstrapServers, security.protocol, saslJaasConfig, ...);
librdkafka speaks its own property names. Only this module (and evgate/kafka/security/ for
the `security` object) translates between the two, so secrets are handled (and masked) in one
place. EVERY Kafka client evgate creates starts from `common_config`: the producer, the shared
and private consumers (consumer_pool.py), the webhook group members (group_consumer.py) and
`evgate kafka check --api` (cli.py), so they all get the API's security settings.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..config import Config
from .security import librdkafka_security, mask_conf


def bootstrap_servers(endpoint_conf: Mapping[str, Any], config: Config) -> str:
    if config.kafka_bootstrap_override:
        return config.kafka_bootstrap_override
    servers = endpoint_conf.get("bootstrapServers")
    if isinstance(servers, list):
        servers = ",".join(servers)
    return servers or config.kafka_bootstrap


def common_config(endpoint_conf: Mapping[str, Any], config: Config) -> dict[str, Any]:
    """Properties shared by producers and consumers: servers and security."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers(endpoint_conf, config),
        "socket.keepalive.enable": True,
        "broker.address.family": "any",
    }
    conf.update(security_config(endpoint_conf.get("security") or {}))
    return conf


def security_config(security: Mapping[str, Any]) -> dict[str, Any]:
    """security.protocol, sasl.*, ssl.* from the definition's `security` object (see
    evgate/kafka/security/ and docs/kafka-security.md); {} for PLAINTEXT. Raises
    KafkaSecurityError (a 503 GatewayError) when a store cannot be used on this gateway."""
    return librdkafka_security(security)


def producer_config(endpoint_conf: Mapping[str, Any], config: Config) -> dict[str, Any]:
    conf = common_config(endpoint_conf, config)
    conf.update({
        "enable.idempotence": True,          # implies acks=all, no duplicates on retry
        "acks": "all",
        "linger.ms": config.kafka_producer_linger_ms,
        "message.timeout.ms": config.produce_timeout_ms,
        "message.max.bytes": max(config.max_message_size + 65536, 1000000),
        "queue.buffering.max.messages": 200000,
        "compression.type": config.kafka_producer_compression,
    })
    return conf


def mask(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to log: passwords and private keys replaced, PEM blobs summarised."""
    return mask_conf(conf)

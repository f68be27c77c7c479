"""librdkafka configuration built from a kafka endpoint definition and the gateway settings.

The definition speaks Gravitee (bootstrapServers, security.protocol, saslJaasConfig, ...);
librdkafka speaks its own property names. Only this module translates between the two, so
secrets are handled (and masked) in one place.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..config import Config


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
    """PLAINTEXT for now; SASL/SSL mapping lands with the Kafka security work."""
    protocol = str(security.get("protocol") or "PLAINTEXT").upper()
    return {"security.protocol": protocol} if protocol != "PLAINTEXT" else {}


def producer_config(endpoint_conf: Mapping[str, Any], config: Config) -> dict[str, Any]:
    conf = common_config(endpoint_conf, config)
    conf.update({
        "enable.idempotence": True,          # implies acks=all, no duplicates on retry
        "acks": "all",
        "linger.ms": config.kafka_producer_linger_ms,
        "message.timeout.ms": config.produce_timeout_ms,
        "message.max.bytes": max(config.max_message_size + 65536, 1000000),
        "queue.buffering.max.messages": 200000,
        "compression.type": "lz4",
    })
    return conf


def mask(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to log: every password/secret/key value is replaced."""
    secret_words = ("password", "secret", "sasl.jaas", "key.pem", "token")
    return {k: ("****" if any(w in k for w in secret_words) else v) for k, v in conf.items()}

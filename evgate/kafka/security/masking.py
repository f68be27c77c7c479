"""Secrets out of sight: where a definition keeps Kafka secrets (for the secret-field table of
evgate/security/secret_fields.py) and librdkafka configurations made safe to log."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from .common import MASK, _CONTENT, _SECRET_FIELDS


def _security_objects(definition: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(json path, security object) of every kafka configuration in a definition."""
    if not isinstance(definition, dict):
        return
    for gi, group in enumerate(definition.get("endpointGroups") or []):
        if not isinstance(group, dict):
            continue
        shared = group.get("sharedConfiguration")
        if isinstance(shared, dict) and isinstance(shared.get("security"), dict):
            yield f"$.endpointGroups[{gi}].sharedConfiguration.security", shared["security"]
        for ni, endpoint in enumerate(group.get("endpoints") or []):
            if not isinstance(endpoint, dict):
                continue
            for field in ("configuration", "sharedConfigurationOverride"):
                conf = endpoint.get(field)
                if isinstance(conf, dict) and isinstance(conf.get("security"), dict):
                    yield (f"$.endpointGroups[{gi}].endpoints[{ni}].{field}.security",
                           conf["security"])


def _secret_leaves(security: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(container, field, relative path) of each secret value in a security object."""
    sasl = security.get("sasl")
    if isinstance(sasl, dict) and isinstance(sasl.get("saslJaasConfig"), str):
        yield sasl, "saslJaasConfig", ".sasl.saslJaasConfig"
    ssl = security.get("ssl")
    if not isinstance(ssl, dict):
        return
    for name in ("trustStore", "keyStore"):
        store = ssl.get(name)
        if not isinstance(store, dict):
            continue
        for field, value in store.items():
            secret = field in _SECRET_FIELDS
            # A key store's inline content holds its private key (PEM or PKCS#12).
            secret = secret or (name == "keyStore" and field in _CONTENT)
            if secret and isinstance(value, str) and value:
                yield store, field, f".ssl.{name}.{field}"


def mask_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A librdkafka configuration safe to log: secrets replaced, PEM blobs summarised."""
    out: dict[str, Any] = {}
    for key, value in conf.items():
        lowered = key.lower()
        if any(word in lowered for word in ("password", "secret", "sasl.jaas", "key.pem",
                                            "token", "sasl.oauthbearer.config")):
            out[key] = MASK
        elif lowered.endswith(".pem") and isinstance(value, str):
            out[key] = f"<PEM, {len(value)} chars>"
        else:
            out[key] = value
    return out


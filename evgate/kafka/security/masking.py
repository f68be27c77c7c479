"""librdkafka configurations made safe to log (which definition fields are secret is declared on
the kafka endpoint's configuration model, evgate/endpoints/kafka.py)."""
from __future__ import annotations

from typing import Any, Mapping

from .common import MASK


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


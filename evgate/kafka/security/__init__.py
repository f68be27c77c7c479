"""Kafka client security from a definition's `security` object (Gravitee shape -> librdkafka).

    security: {protocol: PLAINTEXT | SASL_PLAINTEXT | SASL_SSL | SSL,
               sasl: {saslMechanism: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512,
                      saslJaasConfig: '...PlainLoginModule required username="u" password="p";'},
               ssl:  {trustStore: {type: PEM | PKCS12 | JKS, location | content, password},
                      keyStore:   {type: PEM | PKCS12 | JKS, location | content | certificate.. + key..,
                                   password, keyPassword},
                      hostnameVerifier: true}}

One package so that secrets are handled in one place (docs/kafka-security.md), one module
per idea:

- `jaas.py`: `parse_jaas` / `mask_jaas` (saslJaasConfig);
- `checks.py`: `problems(security)`, static checks for the definition validator (no file
  access: the management API may run on another host than the gateways that read the files);
- `stores.py`: `librdkafka_security(security)`, the librdkafka properties, reading files and
  PKCS#12 stores on the gateway; a store that cannot be used raises `KafkaSecurityError` (503);
- `masking.py`: `mask_conf`, a librdkafka configuration safe to log (which definition fields
  are secret is declared on the kafka endpoint's configuration model, evgate/endpoints/kafka.py;
  evgate/security/secret_fields.py masks and seals them);
- `common.py`: the field names and the error they share.

`saslJaasConfig` is parsed (never passed through): librdkafka has no JAAS, it wants
`sasl.username` / `sasl.password`. Error messages name the option, never its value.
The names below are the package's API (the kafka endpoint, the client configuration and the
secret-field table import them from here).
"""
from __future__ import annotations

from .checks import problems, protocol_of, sasl_problems
from .common import (JKS_ADVICE, LOGIN_MODULES, MASK, MECHANISMS, PROTOCOLS, STORE_TYPES,
                     UNSUPPORTED_MECHANISMS, KafkaSecurityError)
from .jaas import JaasConfig, JaasError, mask_jaas, parse_jaas
from .masking import mask_conf
from .stores import librdkafka_security

__all__ = ["JKS_ADVICE", "LOGIN_MODULES", "MASK", "MECHANISMS", "PROTOCOLS", "STORE_TYPES",
           "UNSUPPORTED_MECHANISMS", "JaasConfig", "JaasError", "KafkaSecurityError",
           "librdkafka_security", "mask_conf",
           "mask_jaas", "parse_jaas", "problems", "protocol_of", "sasl_problems"]

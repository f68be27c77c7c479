"""What the Kafka security modules share: field names, the store type of a store object, the
error a gateway raises when a setting cannot be used there."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ...errors import BackendUnavailableError

MASK = "****"
PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Mechanisms Gravitee knows that evgate does not implement, with what to do instead.
UNSUPPORTED_MECHANISMS = {
    "GSSAPI": "Kerberos (GSSAPI) is not supported",
    "OAUTHBEARER": "OAUTHBEARER is not supported",
    "OAUTHBEARER_TOKEN": "OAUTHBEARER_TOKEN is not supported",
    "AWS_MSK_IAM": "AWS_MSK_IAM is not supported",
    "DELEGATE_TO_BROKER": "DELEGATE_TO_BROKER is not supported",
    "NONE": "NONE is not supported (use protocol PLAINTEXT or SSL for no SASL)",
}
LOGIN_MODULES = {
    "org.apache.kafka.common.security.plain.PlainLoginModule": ("PLAIN",),
    "org.apache.kafka.common.security.scram.ScramLoginModule": ("SCRAM-SHA-256", "SCRAM-SHA-512"),
}
_CONTROL_FLAGS = ("required", "requisite", "sufficient", "optional")
_CLASS_NAME = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\Z")
STORE_TYPES = ("PEM", "PKCS12", "JKS", "NONE")
JKS_ADVICE = ("JCEKS stores are not supported (JKS, PKCS#12 and PEM are): convert it with "
              "`keytool -importkeystore -srckeystore x.jks -destkeystore x.p12 "
              "-deststoretype PKCS12` and use type PKCS12")
_JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")  # JKS, JCEKS

# Field names, Gravitee's first. `location` is what the 3.20 collection sends, `path` 4.x.
_LOCATION = ("location", "path")
_CONTENT = ("content", "certificates")
_CERT_LOCATION = ("certificateLocation", "certLocation", "certPath", "certificatePath")
_CERT_CONTENT = ("certificateChain", "certificate", "certContent", "certificateContent")
_KEY_LOCATION = ("keyLocation", "keyPath")
_KEY_CONTENT = ("key", "keyContent")



class KafkaSecurityError(BackendUnavailableError):
    """A security setting that cannot be used on this gateway (a missing file, a PKCS#12
    password that does not open the store): the API answers 503 until the operator fixes it."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.problem = message
        super().__init__(f"the kafka endpoint's security configuration cannot be used: "
                         f"security{path}: {message}", key="KAFKA_SECURITY_CONFIGURATION",
                         retry_after=30)



def _first(obj: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        value = obj.get(name)
        if value not in (None, ""):
            return name, value
    return None, None


def _store_type(store: Mapping[str, Any]) -> str:
    raw = store.get("type")
    if raw:
        return str(raw).strip().upper().replace("PKCS#12", "PKCS12")
    _, location = _first(store, _LOCATION)
    suffix = Path(str(location)).suffix.lower() if location else ""
    return {".p12": "PKCS12", ".pfx": "PKCS12", ".jks": "JKS"}.get(suffix, "PEM")


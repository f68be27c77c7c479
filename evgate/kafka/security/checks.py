"""Static checks of a definition's `security` object for the definition validator: no file
access (the management API may run on another host than the gateways that read the files)."""
from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator, Mapping

from .common import (LOGIN_MODULES, MECHANISMS, PROTOCOLS, STORE_TYPES,
                     UNSUPPORTED_MECHANISMS, _CERT_CONTENT, _CERT_LOCATION, _CONTENT, _KEY_CONTENT,
                     _KEY_LOCATION, _LOCATION, _first, _store_type)
from .jaas import JaasConfig, JaasError, parse_jaas


def protocol_of(security: Any) -> str:
    if not isinstance(security, Mapping):
        return "PLAINTEXT"
    return str(security.get("protocol") or "PLAINTEXT").strip().upper()


def _mechanism(sasl: Mapping[str, Any], jaas: JaasConfig | None) -> str | None:
    """The declared mechanism (SCRAM_SHA_256 spelled either way), else PLAIN for a
    PlainLoginModule; None when it cannot be known (a ScramLoginModule alone)."""
    raw = sasl.get("saslMechanism") or sasl.get("mechanism")
    if raw:
        text = str(raw).strip().upper()
        return text.replace("_", "-") if text.startswith("SCRAM") else text
    if jaas is not None and LOGIN_MODULES.get(jaas.module) == ("PLAIN",):
        return "PLAIN"
    return None


def sasl_problems(sasl: Any) -> Iterator[tuple[str, str]]:
    where = ".security.sasl"
    if not isinstance(sasl, Mapping):
        yield where, "is required with a SASL protocol: {saslMechanism, saslJaasConfig}"
        return
    raw_mechanism = sasl.get("saslMechanism") or sasl.get("mechanism")
    mechanism_key = str(raw_mechanism or "").strip().upper()
    if mechanism_key in UNSUPPORTED_MECHANISMS:
        yield (f"{where}.saslMechanism", f"{UNSUPPORTED_MECHANISMS[mechanism_key]}; "
                                         f"supported: {', '.join(MECHANISMS)}")
        return
    jaas = None
    try:
        jaas = parse_jaas(sasl.get("saslJaasConfig"))
    except JaasError as exc:
        yield f"{where}.saslJaasConfig", str(exc)
    mechanism = _mechanism(sasl, jaas)
    if raw_mechanism and mechanism not in MECHANISMS:
        yield (f"{where}.saslMechanism", f"unknown SASL mechanism {str(raw_mechanism)[:40]!r}; "
                                         f"supported: {', '.join(MECHANISMS)}")
        return
    if jaas is None:
        return
    allowed = LOGIN_MODULES.get(jaas.module)
    if allowed is None:
        yield (f"{where}.saslJaasConfig",
               f"login module {jaas.module[:100]!r} is not supported; use "
               f"{' or '.join(LOGIN_MODULES)}")
        return
    if mechanism is None:
        yield (f"{where}.saslMechanism",
               "is required with ScramLoginModule: SCRAM-SHA-256 or SCRAM-SHA-512")
    elif mechanism not in allowed:
        yield (f"{where}.saslJaasConfig",
               f"login module {jaas.module.rsplit('.', 1)[-1]} does not match saslMechanism "
               f"{mechanism} (expected for {', '.join(allowed)})")
    for option in ("username", "password"):
        if not jaas.options.get(option):
            yield f"{where}.saslJaasConfig", f"option {option!r} is missing or empty"



def _store_problems(store: Any, where: str, key_store: bool) -> Iterator[tuple[str, str]]:
    if not isinstance(store, Mapping):
        yield where, "must be an object {type, location | content, password}"
        return
    kind = _store_type(store)
    if kind not in STORE_TYPES:
        yield f"{where}.type", f"must be one of PEM, PKCS12, JKS; got {kind[:20]!r}"
        return
    if kind == "JKS":  # inline content can be checked here; a file only on the gateway
        yield from _inline_jks_problems(store, where, key_store)
    if kind == "NONE":
        return
    for name, value in store.items():
        if name in ("password", "keyPassword") and value is not None \
                and not isinstance(value, str):
            yield f"{where}.{name}", "must be a string"
    location_name, location = _first(store, _LOCATION)
    content_name, content = _first(store, _CONTENT)
    if location is not None and not isinstance(location, str):
        yield f"{where}.{location_name}", "must be a file path (string)"
    if content is not None and not isinstance(content, str):
        yield f"{where}.{content_name}", "must be a string"
    if key_store and kind == "PEM":
        _, cert_file = _first(store, _CERT_LOCATION)
        _, cert_text = _first(store, _CERT_CONTENT)
        _, key_file = _first(store, _KEY_LOCATION)
        _, key_text = _first(store, _KEY_CONTENT)
        split = any(v is not None for v in (cert_file, cert_text, key_file, key_text))
        if split:
            if (cert_file is None) == (cert_text is None):
                yield where, ("a PEM keyStore needs exactly one of certificateLocation / "
                              "certificateChain (the client certificate)")
            if (key_file is None) == (key_text is None):
                yield where, "a PEM keyStore needs exactly one of keyLocation / key (its key)"
            if location is not None or content is not None:
                yield where, ("give either location/content (one PEM with certificate and key) "
                              "or certificate + key fields, not both")
            return
    if location is None and content is None:
        yield where, (f"a {kind} {'keyStore' if key_store else 'trustStore'} needs "
                      f"'location' (a file on the gateway) or 'content' "
                      f"({'PEM text' if kind == 'PEM' else 'base64 of the .p12 file'})")
    elif location is not None and content is not None:
        yield where, "give either 'location' or 'content', not both"


def _inline_jks_problems(store: Mapping[str, Any], where: str, key_store: bool
                         ) -> Iterator[tuple[str, str]]:
    from ..keystores import KeyStoreError, key_pem, trusted_pem
    content_name, content = _first(store, _CONTENT)
    password, key_password = store.get("password"), store.get("keyPassword")
    if not isinstance(content, str) or not isinstance(password, (str, type(None))) \
            or not isinstance(key_password, (str, type(None))) or password == "****":
        return  # shapes are reported above; a masked password is restored later
    try:
        data = base64.b64decode("".join(content.split()), validate=True)
        if key_store:
            key_pem(data, password, key_password)
        else:
            trusted_pem(data, password)
    except (binascii.Error, ValueError) as exc:
        message = str(exc) if isinstance(exc, KeyStoreError) else "must be the base64 of a " \
            "JKS file"
        yield f"{where}.{content_name}", message


def problems(security: Any) -> Iterator[tuple[str, str]]:
    """(sub-path, message) for each problem, sub-paths relative to the endpoint
    configuration (`.security.sasl.saslJaasConfig`)."""
    if security is None:
        return
    if not isinstance(security, Mapping):
        yield ".security", "must be an object {protocol, sasl, ssl}"
        return
    protocol = protocol_of(security)
    if protocol not in PROTOCOLS:
        yield ".security.protocol", f"must be one of {', '.join(PROTOCOLS)}"
        return
    if protocol.startswith("SASL_"):
        yield from sasl_problems(security.get("sasl"))
    if protocol.endswith("SSL"):
        ssl = security.get("ssl")
        if ssl is None:
            return
        if not isinstance(ssl, Mapping):
            yield ".security.ssl", "must be an object {trustStore, keyStore, hostnameVerifier}"
            return
        verifier = ssl.get("hostnameVerifier")
        if verifier is not None and not isinstance(verifier, bool):
            yield ".security.ssl.hostnameVerifier", "must be true or false"
        for name, key_store in (("trustStore", False), ("keyStore", True)):
            if ssl.get(name) is not None:
                yield from _store_problems(ssl[name], f".security.ssl.{name}", key_store)


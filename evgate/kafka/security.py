"""Kafka client security from a definition's `security` object (Gravitee shape -> librdkafka).

    security: {protocol: PLAINTEXT | SASL_PLAINTEXT | SASL_SSL | SSL,
               sasl: {saslMechanism: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512,
                      saslJaasConfig: '...PlainLoginModule required username="u" password="p";'},
               ssl:  {trustStore: {type: PEM | PKCS12, location | content, password},
                      keyStore:   {type: PEM | PKCS12, location | content | certificate.. + key..,
                                   password, keyPassword},
                      hostnameVerifier: true}}

Three jobs, all here so that secrets are handled in one place (docs/kafka-security.md):

- `problems(security)`: static checks for the definition validator (no file access: the
  management API may run on another host than the gateways that read the files);
- `librdkafka_security(security)`: the librdkafka properties, reading files and PKCS#12
  stores on the gateway; a store that cannot be used raises `KafkaSecurityError` (503);
- `mask_definition` / `restore_masked`: the management API shows `****` instead of secrets,
  and a `****` sent back in an update keeps the stored secret.

`saslJaasConfig` is parsed (never passed through): librdkafka has no JAAS, it wants
`sasl.username` / `sasl.password`. Error messages name the option, never its value.
"""
from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import BackendUnavailableError

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
JKS_ADVICE = ("JKS stores are not supported (librdkafka reads PEM and PKCS#12): convert it with "
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
#: Values masked in management responses, by field name inside `security`.
_SECRET_FIELDS = frozenset({"password", "keyPassword", "key", "keyContent"})


class KafkaSecurityError(BackendUnavailableError):
    """A security setting that cannot be used on this gateway (a missing file, a PKCS#12
    password that does not open the store): the API answers 503 until the operator fixes it."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.problem = message
        super().__init__(f"the kafka endpoint's security configuration cannot be used: "
                         f"security{path}: {message}", key="KAFKA_SECURITY_CONFIGURATION",
                         retry_after=30)


# -- JAAS -------------------------------------------------------------------------------------
class JaasError(ValueError):
    """A malformed saslJaasConfig; the message never contains an option's value."""


@dataclass
class JaasConfig:
    module: str
    flag: str
    options: dict[str, str]

    def format(self) -> str:
        """Back to Java syntax (used when a masked password is replaced by the stored one)."""
        parts = [self.module, self.flag]
        for name, value in self.options.items():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{name}="{escaped}"')
        return " ".join(parts) + ";"


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _jaas_tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(kind, value, position): kind is 'word', 'quoted', '=' or ';'. Like Kafka's JaasConfig
    (a java.io.StreamTokenizer): double or single quotes with backslash escapes, bare words,
    // and /* */ comments."""
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JaasError(f"unterminated comment at character {i + 1}")
            i = end + 2
        elif char in "=;":
            yield char, char, i
            i += 1
        elif char in "\"'":
            start, i, out = i, i + 1, []
            while True:
                if i >= n:
                    raise JaasError(f"unterminated quoted value starting at character "
                                    f"{start + 1}")
                c = text[i]
                if c == "\\" and i + 1 < n:
                    out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                    i += 2
                elif c == char:
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            yield "quoted", "".join(out), start
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "=;\"'" \
                    and not text.startswith("//", i) and not text.startswith("/*", i):
                i += 1
            yield "word", text[start:i], start


def parse_jaas(text: Any) -> JaasConfig:
    """`<LoginModule class> <flag> (name=value)* ;` - exactly one login module, as Kafka's
    clients require."""
    if not isinstance(text, str) or not text.strip():
        raise JaasError("must be a non-empty string "
                        "'<LoginModule> required username=\"...\" password=\"...\";'")
    tokens = list(_jaas_tokens(text))
    if not tokens or tokens[0][0] != "word" or (len(tokens) > 1 and tokens[1][0] == "=") \
            or not _CLASS_NAME.match(tokens[0][1]):
        raise JaasError("must start with a login module class name "
                        "(org.apache.kafka.common.security.plain.PlainLoginModule, ...)")
    module = tokens[0][1]
    if len(tokens) < 2 or tokens[1][0] != "word" or tokens[1][1].lower() not in _CONTROL_FLAGS:
        raise JaasError(f"the login module {module} must be followed by a control flag "
                        f"({', '.join(_CONTROL_FLAGS)})")
    flag = tokens[1][1].lower()
    options: dict[str, str] = {}
    i = 2
    while True:
        if i >= len(tokens):
            raise JaasError("must end with ';'")
        kind, value, pos = tokens[i]
        if kind == ";":
            if i + 1 < len(tokens):
                raise JaasError(f"unexpected text after ';' at character {tokens[i + 1][2] + 1} "
                                "(one login module only)")
            break
        if kind != "word":
            raise JaasError(f"expected an option name at character {pos + 1}")
        name = value
        if i + 1 >= len(tokens) or tokens[i + 1][0] != "=":
            raise JaasError(f"expected '=' after option {name!r}")
        if i + 2 >= len(tokens) or tokens[i + 2][0] not in ("word", "quoted"):
            raise JaasError(f"option {name!r} has no value")
        if name in options:
            raise JaasError(f"option {name!r} is given twice")
        options[name] = tokens[i + 2][1]
        i += 3
    return JaasConfig(module, flag, options)


def mask_jaas(text: str) -> str:
    """The JAAS string with its password replaced by ****; the username stays readable."""
    try:
        jaas = parse_jaas(text)
    except JaasError:
        return MASK
    if "password" in jaas.options:
        jaas.options["password"] = MASK
    return jaas.format()


# -- static validation ------------------------------------------------------------------------
def _first(obj: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        value = obj.get(name)
        if value not in (None, ""):
            return name, value
    return None, None


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


def _store_type(store: Mapping[str, Any]) -> str:
    raw = store.get("type")
    if raw:
        return str(raw).strip().upper().replace("PKCS#12", "PKCS12")
    _, location = _first(store, _LOCATION)
    suffix = Path(str(location)).suffix.lower() if location else ""
    return {".p12": "PKCS12", ".pfx": "PKCS12", ".jks": "JKS"}.get(suffix, "PEM")


def _store_problems(store: Any, where: str, key_store: bool) -> Iterator[tuple[str, str]]:
    if not isinstance(store, Mapping):
        yield where, "must be an object {type, location | content, password}"
        return
    kind = _store_type(store)
    if kind not in STORE_TYPES:
        yield f"{where}.type", f"must be one of PEM, PKCS12 (JKS: convert it); got {kind[:20]!r}"
        return
    if kind == "JKS":
        yield f"{where}.type", JKS_ADVICE
        return
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


# -- librdkafka properties (on the gateway) ---------------------------------------------------
def librdkafka_security(security: Any) -> dict[str, Any]:
    """librdkafka properties for `security`; KafkaSecurityError when they cannot be built.

    Cached by the security object and the files' size and mtime: consumers build their
    configuration per subscription and a PKCS#12 decode costs milliseconds."""
    if not security:
        return {}
    found = next(iter(problems(security)), None)
    if found is not None:
        raise KafkaSecurityError(found[0].removeprefix(".security"), found[1])
    key = _cache_key(security)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return dict(cached)
    conf = _build(security)
    with _cache_lock:
        if len(_cache) >= 256:
            _cache.clear()
        _cache[key] = conf
    return dict(conf)


_cache: dict[str, dict[str, Any]] = {}
_cache_lock = threading.Lock()


def _cache_key(security: Mapping[str, Any]) -> str:
    stats = []
    ssl = security.get("ssl") if isinstance(security.get("ssl"), Mapping) else {}
    for store in (ssl.get("trustStore"), ssl.get("keyStore")):
        if isinstance(store, Mapping):
            for names in (_LOCATION, _CERT_LOCATION, _KEY_LOCATION):
                _, location = _first(store, names)
                if isinstance(location, str):
                    try:
                        st = os.stat(location)
                        stats.append((location, st.st_size, st.st_mtime_ns))
                    except OSError:
                        stats.append((location, None, None))
    raw = json.dumps([security, stats], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _build(security: Mapping[str, Any]) -> dict[str, Any]:
    protocol = protocol_of(security)
    conf: dict[str, Any] = {}
    if protocol == "PLAINTEXT":
        return conf
    conf["security.protocol"] = protocol
    if protocol.startswith("SASL_"):
        sasl = security["sasl"]
        jaas = parse_jaas(sasl.get("saslJaasConfig"))
        conf["sasl.mechanism"] = _mechanism(sasl, jaas)
        conf["sasl.username"] = jaas.options["username"]
        conf["sasl.password"] = jaas.options["password"]
    if protocol.endswith("SSL"):
        ssl = security.get("ssl") or {}
        verify = ssl.get("hostnameVerifier", True) is not False
        conf["ssl.endpoint.identification.algorithm"] = "https" if verify else "none"
        if isinstance(ssl.get("trustStore"), Mapping):
            conf.update(_trust_store(ssl["trustStore"], ".ssl.trustStore"))
        if isinstance(ssl.get("keyStore"), Mapping):
            conf.update(_key_store(ssl["keyStore"], ".ssl.keyStore"))
    return conf


def _read(path: str, where: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        raise KafkaSecurityError(where, f"file {path!r} does not exist on this gateway") from None
    except OSError as exc:
        raise KafkaSecurityError(where, f"file {path!r} cannot be read: {exc.strerror}") from None


def _store_bytes(store: Mapping[str, Any], where: str, kind: str) -> tuple[bytes, str | None]:
    """The store's raw bytes and the file it came from (None for inline content)."""
    location_name, location = _first(store, _LOCATION)
    if location is not None:
        data = _read(location, f"{where}.{location_name}")
        origin = location
    else:
        content_name, content = _first(store, _CONTENT)
        origin = None
        if kind == "PEM":
            data = content.encode()
        else:
            try:
                data = base64.b64decode("".join(content.split()), validate=True)
            except (binascii.Error, ValueError):
                raise KafkaSecurityError(f"{where}.{content_name}",
                                         "must be the base64 of a PKCS#12 file") from None
    if data[:4] in _JKS_MAGIC:
        raise KafkaSecurityError(where, f"this store is a Java KeyStore, not {kind}. "
                                        f"{JKS_ADVICE}")
    return data, origin


def _pem_certificates(data: bytes) -> list[bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return []
    return [cert.public_bytes(Encoding.PEM) for cert in certs]


def _load_pkcs12(data: bytes, password: Any, where: str):
    from cryptography.hazmat.primitives.serialization import pkcs12
    secret = password.encode() if isinstance(password, str) and password else None
    try:
        return pkcs12.load_pkcs12(data, secret)
    except ValueError:
        raise KafkaSecurityError(where, "not a PKCS#12 store, or the password does not open "
                                        "it") from None


def _trust_store(store: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = _store_type(store)
    if kind == "NONE":
        return {}
    data, origin = _store_bytes(store, where, kind)
    if kind == "PKCS12":
        from cryptography.hazmat.primitives.serialization import Encoding
        p12 = _load_pkcs12(data, store.get("password"), where)
        certs = [c.certificate.public_bytes(Encoding.PEM) for c in p12.additional_certs]
        if p12.cert is not None:
            certs.insert(0, p12.cert.certificate.public_bytes(Encoding.PEM))
    else:
        certs = _pem_certificates(data)
    if not certs:
        raise KafkaSecurityError(where, "contains no certificate")
    if origin is not None and kind == "PEM":
        return {"ssl.ca.location": origin}
    if len(certs) == 1:
        return {"ssl.ca.pem": certs[0].decode()}
    # librdkafka 2.16 reads only the FIRST certificate of ssl.ca.pem (verified against the
    # local broker): several CAs go through a file. Certificates only - nothing secret.
    return {"ssl.ca.location": _ca_bundle_file(b"".join(certs))}


_bundle_dir: str | None = None


def _ca_bundle_file(pem: bytes) -> str:
    """A file holding these CA certificates, in a per-process directory removed at exit."""
    global _bundle_dir
    if _bundle_dir is None:
        _bundle_dir = tempfile.mkdtemp(prefix="evgate-ca-bundle-")
        atexit.register(shutil.rmtree, _bundle_dir, True)
    path = Path(_bundle_dir) / f"{hashlib.sha256(pem).hexdigest()[:24]}.pem"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        os.replace(tmp, path)
    return str(path)


def _key_store(store: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = _store_type(store)
    if kind == "NONE":
        return {}
    if kind == "PKCS12":
        return _pkcs12_key_store(store, where)
    key_password = store.get("keyPassword") or store.get("password")
    conf: dict[str, Any] = {}
    _, cert_file = _first(store, _CERT_LOCATION)
    _, cert_text = _first(store, _CERT_CONTENT)
    _, key_file = _first(store, _KEY_LOCATION)
    _, key_text = _first(store, _KEY_CONTENT)
    if any(v is not None for v in (cert_file, cert_text, key_file, key_text)):
        if cert_file is not None:
            name, _ = _first(store, _CERT_LOCATION)
            if not _pem_certificates(_read(cert_file, f"{where}.{name}")):
                raise KafkaSecurityError(f"{where}.{name}", "contains no PEM certificate")
            conf["ssl.certificate.location"] = cert_file
        else:
            if not _pem_certificates(cert_text.encode()):
                raise KafkaSecurityError(where, "the certificate is not PEM")
            conf["ssl.certificate.pem"] = cert_text
        if key_file is not None:
            name, _ = _first(store, _KEY_LOCATION)
            _check_pem_key(_read(key_file, f"{where}.{name}"), key_password, f"{where}.{name}")
            conf["ssl.key.location"] = key_file
        else:
            _check_pem_key(key_text.encode(), key_password, where)
            conf["ssl.key.pem"] = key_text
    else:
        data, origin = _store_bytes(store, where, kind)
        if not _pem_certificates(data):
            raise KafkaSecurityError(where, "contains no PEM certificate")
        _check_pem_key(data, key_password, where)
        if origin is not None:
            conf["ssl.certificate.location"] = origin
            conf["ssl.key.location"] = origin
        else:
            conf["ssl.certificate.pem"] = data.decode()
            conf["ssl.key.pem"] = data.decode()
    if key_password:
        conf["ssl.key.password"] = key_password
    return conf


_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----",
                      re.S)


def _check_pem_key(data: bytes, password: Any, where: str) -> None:
    """Open the PEM private key now, so a wrong or missing key password is a clear message
    rather than librdkafka's generic failure when the client is created."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    block = _PEM_KEY.search(data)
    if block is None:
        raise KafkaSecurityError(where, "contains no PEM private key")
    try:
        load_pem_private_key(block.group(0), password.encode() if password else None)
    except TypeError:
        raise KafkaSecurityError(where, "the private key is encrypted: give keyPassword"
                                 if not password else "the private key is not encrypted: "
                                 "remove keyPassword / password") from None
    except ValueError:
        raise KafkaSecurityError(where, "the private key cannot be read (wrong keyPassword, "
                                        "or not a PEM key)") from None


def _pkcs12_key_store(store: Mapping[str, Any], where: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                              PrivateFormat)
    data, origin = _store_bytes(store, where, "PKCS12")
    password = store.get("password") or store.get("keyPassword")
    p12 = _load_pkcs12(data, password, where)
    if p12.key is None or p12.cert is None:
        raise KafkaSecurityError(where, "the PKCS#12 store holds no private key with its "
                                        "certificate")
    if origin is not None:
        # librdkafka reads PKCS#12 itself (chain included); checked above for a clear error.
        conf: dict[str, Any] = {"ssl.keystore.location": origin}
        if password:
            conf["ssl.keystore.password"] = password
        return conf
    # Inline store: key and certificate go to librdkafka in memory, never to a file.
    chain = [p12.cert.certificate] + [c.certificate for c in p12.additional_certs]
    return {
        "ssl.certificate.pem": b"".join(c.public_bytes(Encoding.PEM) for c in chain).decode(),
        "ssl.key.pem": p12.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                             NoEncryption()).decode(),
    }


# -- masking in management responses ----------------------------------------------------------
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

"""The librdkafka properties of a `security` object, built on the gateway: files and PKCS#12
stores are read here; a store that cannot be used raises `KafkaSecurityError` (503)."""
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
from pathlib import Path
from typing import Any, Mapping

from .checks import _mechanism, problems, protocol_of
from .common import (JKS_ADVICE, KafkaSecurityError, _CERT_CONTENT, _CERT_LOCATION, _CONTENT,
                     _JKS_MAGIC, _KEY_CONTENT, _KEY_LOCATION, _LOCATION, _first, _store_type)
from .jaas import parse_jaas


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
    if data[:4] == _JKS_MAGIC[1]:
        raise KafkaSecurityError(where, f"this store is a JCEKS Java KeyStore: {JKS_ADVICE}")
    return data, origin


def _jks(store: Mapping[str, Any], data: bytes, where: str, key_store: bool) -> Any:
    """A JKS store (declared so, or a file that is one whatever its declared type: the 3.20
    collection names .jks files PKCS12) read by evgate/kafka/keystores.py, as PEM."""
    from ..keystores import KeyStoreError, key_pem, trusted_pem
    try:
        if key_store:
            return key_pem(data, store.get("password"), store.get("keyPassword"))
        return trusted_pem(data, store.get("password"))
    except KeyStoreError as exc:
        raise KafkaSecurityError(where, str(exc)) from None


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
    if kind == "JKS" or data[:4] == _JKS_MAGIC[0]:
        certs = _jks(store, data, where, key_store=False)
        origin = None  # librdkafka cannot read the file itself
    elif kind == "PKCS12":
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
    if kind in ("PKCS12", "JKS"):
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
    if _store_type(store) == "JKS" or data[:4] == _JKS_MAGIC[0]:
        # in memory, as an inline PKCS#12 store: the key never goes to a file
        chain, key = _jks(store, data, where, key_store=True)
        return {"ssl.certificate.pem": chain, "ssl.key.pem": key}
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


"""Java KeyStores (JKS) read into what librdkafka takes: PEM certificates and keys.

Gravitee users hold their Kafka trust and key stores as JKS; librdkafka reads PEM and PKCS#12
only. Why a parser of our own rather than pyjks: pyjks' last release is 20.0.0 (April 2020),
nothing since, and it pulls javaobj-py3, pyasn1, pyasn1-modules, pycryptodomex and twofish (a
C extension, itself unmaintained) for the JCEKS/BKS/UBER formats evgate has no use for; no
maintained alternative exists on PyPI. The JKS format is small and fixed (OpenJDK's
JavaKeyStore and KeyProtector), so this module reads exactly it:

    magic FEEDFEED | version 1|2 | count | entries | SHA-1 integrity digest (20 bytes)
    entry 1 (private key): alias, date, EncryptedPrivateKeyInfo (Sun key protector,
                           OID 1.3.6.1.4.1.42.2.17.1.1), certificate chain
    entry 2 (trusted certificate): alias, date, certificate

The digest is checked with the store password (SHA-1 over the password as UTF-16BE,
"Mighty Aphrodite" and the store), so a wrong password or a damaged file is a clear error,
not garbage. A private key is recovered with its key password (SHA-1 keystream, checked by
the protector's own digest) into PKCS#8, then loaded by `cryptography`. JCEKS stores
(magic CECECECE) are refused with the conversion command. Tested against stores written by
keytool (tests/unit/test_keystores.py).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

JKS_MAGIC = b"\xfe\xed\xfe\xed"
JCEKS_MAGIC = b"\xce\xce\xce\xce"
_SUN_KEY_PROTECTOR = "1.3.6.1.4.1.42.2.17.1.1"
CONVERT = ("convert it with `keytool -importkeystore -srckeystore x.jks -destkeystore x.p12 "
           "-deststoretype PKCS12` and use type PKCS12")


class KeyStoreError(ValueError):
    """A store that cannot be read; the message says why (never a secret)."""


@dataclass
class KeyEntry:
    alias: str
    private_key: Any                  # a cryptography private key
    chain: list[Any]                  # cryptography x509 certificates, leaf first


@dataclass
class JavaKeyStore:
    certificates: list[Any] = field(default_factory=list)   # trusted certificate entries
    keys: list[KeyEntry] = field(default_factory=list)


def is_java_keystore(data: bytes) -> bool:
    return data[:4] in (JKS_MAGIC, JCEKS_MAGIC)


def _utf16(password: str) -> bytes:
    return password.encode("utf-16-be")


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise KeyStoreError("the JKS store is truncated or damaged")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def utf(self) -> str:
        size = struct.unpack(">H", self.take(2))[0]
        # Java's modified UTF-8 differs from UTF-8 only for NUL and astral characters
        return self.take(size).decode("utf-8", "replace")


def read_jks(data: bytes, password: str | None, key_password: str | None = None, *,
             open_keys: bool = True) -> JavaKeyStore:
    """The trusted certificates and private key entries of a JKS store.

    `password` checks the store's integrity (None: not checked, as keytool -list does without
    -storepass); `key_password` (default: `password`) opens the private keys; with
    `open_keys=False` key entries come with their chain and `private_key=None`."""
    from cryptography import x509
    if data[:4] == JCEKS_MAGIC:
        raise KeyStoreError(f"JCEKS stores are not supported: {CONVERT}")
    if data[:4] != JKS_MAGIC:
        raise KeyStoreError("not a Java KeyStore (JKS)")
    if len(data) < 32:
        raise KeyStoreError("the JKS store is truncated or damaged")
    body, digest = data[:-20], data[-20:]
    if password is not None:
        check = hashlib.sha1(_utf16(password) + b"Mighty Aphrodite" + body).digest()
        if check != digest:
            raise KeyStoreError("the JKS store password is wrong, or the store is damaged")
    reader = _Reader(body)
    reader.take(4)
    version = reader.int()
    if version not in (1, 2):
        raise KeyStoreError(f"unsupported JKS version {version}")
    store = JavaKeyStore()

    def certificate() -> Any:
        if version == 2:
            kind = reader.utf()
            if kind != "X.509":
                raise KeyStoreError(f"unsupported certificate type {kind[:20]!r}")
        der = reader.take(reader.int())
        try:
            return x509.load_der_x509_certificate(der)
        except ValueError:
            raise KeyStoreError("a certificate of the JKS store cannot be read") from None

    count = reader.int()
    if count < 0 or count > 100_000:
        raise KeyStoreError("the JKS store is truncated or damaged")
    for _ in range(count):
        tag = reader.int()
        alias = reader.utf()
        reader.take(8)  # creation date
        if tag == 1:
            protected = reader.take(reader.int())
            chain = [certificate() for _ in range(reader.int())]
            secret = key_password if key_password is not None else password
            if not open_keys:
                store.keys.append(KeyEntry(alias, None, chain))
                continue
            if secret is None:
                raise KeyStoreError(f"entry {alias!r} is a private key: a password is needed")
            store.keys.append(KeyEntry(alias, _recover_key(protected, secret, alias), chain))
        elif tag == 2:
            store.certificates.append(certificate())
        else:
            raise KeyStoreError(f"entry {alias!r} has unknown type {tag} (JCEKS secret "
                                f"keys are not supported)")
    if reader.pos != len(body):
        raise KeyStoreError("the JKS store is truncated or damaged")
    return store


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise KeyStoreError("a private key of the JKS store is damaged")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or pos + size > len(data):
            raise KeyStoreError("a private key of the JKS store is damaged")
        length = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    if pos + length > len(data):
        raise KeyStoreError("a private key of the JKS store is damaged")
    return tag, pos, pos + length


def _oid(value: bytes) -> str:
    parts, number = [], 0
    for byte in value:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    if not parts:
        return ""
    first = min(parts[0] // 40, 2)
    return ".".join(str(p) for p in [first, parts[0] - 40 * first] + parts[1:])


def _recover_key(encrypted_info: bytes, password: str, alias: str) -> Any:
    """Undo the Sun key protector: EncryptedPrivateKeyInfo -> PKCS#8 -> private key."""
    from cryptography.hazmat.primitives.serialization import load_der_private_key
    tag, start, end = _der(encrypted_info, 0)            # EncryptedPrivateKeyInfo SEQUENCE
    algorithm_tag, algorithm_start, algorithm_end = _der(encrypted_info, start)
    oid_tag, oid_start, oid_end = _der(encrypted_info, algorithm_start)
    data_tag, data_start, data_end = _der(encrypted_info, algorithm_end)
    if (tag, algorithm_tag, oid_tag, data_tag) != (0x30, 0x30, 0x06, 0x04):
        raise KeyStoreError(f"entry {alias!r}: not an encrypted private key")
    algorithm = _oid(encrypted_info[oid_start:oid_end])
    if algorithm != _SUN_KEY_PROTECTOR:
        raise KeyStoreError(f"entry {alias!r}: key protection {algorithm} is not supported")
    protected = encrypted_info[data_start:data_end]
    if len(protected) <= 40:
        raise KeyStoreError(f"entry {alias!r}: the private key is damaged")
    salt, encrypted, check = protected[:20], protected[20:-20], protected[-20:]
    secret = _utf16(password)
    stream, digest = bytearray(), salt
    while len(stream) < len(encrypted):
        digest = hashlib.sha1(secret + digest).digest()
        stream += digest
    plain = bytes(a ^ b for a, b in zip(encrypted, stream))
    if hashlib.sha1(secret + plain).digest() != check:
        raise KeyStoreError(f"entry {alias!r}: the key password is wrong")
    try:
        return load_der_private_key(plain, None)
    except (ValueError, TypeError):
        raise KeyStoreError(f"entry {alias!r}: the private key cannot be read") from None



def trusted_pem(data: bytes, password: str | None) -> list[bytes]:
    """The certificates a JKS trust store vouches for, as PEM: its trusted certificate
    entries, then the chains of any key entries (whose keys are not opened)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    store = read_jks(data, password, open_keys=False)
    certs = store.certificates + [c for entry in store.keys for c in entry.chain]
    return [c.public_bytes(Encoding.PEM) for c in certs]


def key_pem(data: bytes, password: str | None, key_password: str | None
            ) -> tuple[str, str]:
    """(certificate chain PEM, unencrypted PKCS#8 key PEM) of a JKS key store's one key."""
    from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                              PrivateFormat)
    store = read_jks(data, password, key_password)
    if len(store.keys) != 1:
        raise KeyStoreError(f"the JKS key store must hold exactly one private key entry "
                            f"(it holds {len(store.keys)})")
    entry = store.keys[0]
    if not entry.chain:
        raise KeyStoreError(f"entry {entry.alias!r} has no certificate")
    chain = b"".join(c.public_bytes(Encoding.PEM) for c in entry.chain).decode()
    key = entry.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                          NoEncryption()).decode()
    return chain, key

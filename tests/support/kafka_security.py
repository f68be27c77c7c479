"""A test PKI and a private Kafka broker with SASL and TLS listeners (no mocks).

`make_pki(directory)` writes a throw-away CA, a broker certificate (SAN DNS:localhost and
IP:127.0.0.1) and a client certificate, in the shapes evgate accepts: PEM files, inline PEM,
PKCS#12 key store and PKCS#12 (Java) trust store. `secure_broker()` starts ONE private broker
(tests/support/kafka_broker.py, scripts/kafka.sh) with every listener a test module needs:

    PLAINTEXT       inter-broker + the readiness check + test-side admin
    SASL_PLAINTEXT  PLAIN (user bob) and SCRAM-SHA-256/512 (user alice)
    SSL             server certificate from the test CA, client certificate REQUIRED (mTLS)
    SASL_SSL        PLAIN and SCRAM over TLS (no client certificate)

Secrets here are test-only values; tests assert none of them reaches a gateway log.
"""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .kafka_broker import BrokerHandle, free_port_pair, private_broker

PLAIN_USER = ("bob", "bob-plain-Secret-1")
SCRAM_USER = ("alice", "alice-scram-Secret-2")
BROKER_STORE_PASSWORD = "broker-store-Secret-3"
CLIENT_P12_PASSWORD = "client-p12-Secret-4"
CLIENT_KEY_PASSWORD = "client-key-Secret-5"
TRUSTSTORE_PASSWORD = "truststore-Secret-6"

#: Every secret a gateway might be handed in these tests: none may appear in its logs.
SECRETS = (PLAIN_USER[1], SCRAM_USER[1], BROKER_STORE_PASSWORD, CLIENT_P12_PASSWORD,
           CLIENT_KEY_PASSWORD, TRUSTSTORE_PASSWORD)


@dataclass
class Pki:
    directory: Path
    ca_pem: Path                 # the CA certificate (trust anchor), PEM
    truststore_p12: Path         # the CA as a Java PKCS#12 trust store (TRUSTSTORE_PASSWORD)
    broker_p12: Path             # the broker's key + certificate chain (BROKER_STORE_PASSWORD)
    client_p12: Path             # the client's key + certificate (CLIENT_P12_PASSWORD)
    client_cert_pem: Path        # the client certificate, PEM
    client_key_pem: Path         # the client key, encrypted PKCS#8 PEM (CLIENT_KEY_PASSWORD)
    client_key_plain: str        # the client key, unencrypted PEM text (for inline content)
    key_markers: list[str] = field(default_factory=list)  # base64 lines of the private keys


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool = False,
                 server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_lines(key) -> list[str]:
    text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    return [line for line in text.splitlines() if line and not line.startswith("-----")]


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("evgate test CA", ca_key, _name("evgate test CA"), ca_key, ca=True)
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = _certificate("localhost", broker_key, ca_cert.subject, ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _certificate("evgate-client", client_key, ca_cert.subject, ca_key)

    pki = Pki(directory=directory, ca_pem=directory / "ca.pem",
              truststore_p12=directory / "truststore.p12", broker_p12=directory / "broker.p12",
              client_p12=directory / "client.p12", client_cert_pem=directory / "client-cert.pem",
              client_key_pem=directory / "client-key.pem",
              client_key_plain=client_key.private_bytes(
                  serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                  serialization.NoEncryption()).decode())
    pki.ca_pem.write_bytes(_pem(ca_cert))
    pki.truststore_p12.write_bytes(pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca_cert, b"evgate-ca")],
        serialization.BestAvailableEncryption(TRUSTSTORE_PASSWORD.encode())))
    pki.broker_p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"broker", broker_key, broker_cert, [ca_cert],
        serialization.BestAvailableEncryption(BROKER_STORE_PASSWORD.encode())))
    pki.client_p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"client", client_key, client_cert, [ca_cert],
        serialization.BestAvailableEncryption(CLIENT_P12_PASSWORD.encode())))
    pki.client_cert_pem.write_bytes(_pem(client_cert))
    pki.client_key_pem.write_bytes(client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CLIENT_KEY_PASSWORD.encode())))
    for key in (ca_key, broker_key, client_key):
        pki.key_markers.extend(_key_lines(key))
    return pki


def _free_port() -> int:
    from .ports import free_ports
    return free_ports(1)


@dataclass
class SecureBroker:
    plaintext: str          # host:port of each listener
    sasl_plaintext: str
    ssl: str
    sasl_ssl: str
    pki: Pki
    handle: BrokerHandle


def broker_properties(port: int, sasl_port: int, ssl_port: int, sasl_ssl_port: int,
                      pki: Pki, plain_users: dict[str, str] | None = None) -> str:
    users = {PLAIN_USER[0]: PLAIN_USER[1], **(plain_users or {})}
    plain_jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required " +
                  " ".join(f'user_{name}="{password}"' for name, password in users.items()) +
                  ";")
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    listeners = (f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1},"
                 f"SASL_PLAINTEXT://127.0.0.1:{sasl_port},SSL://127.0.0.1:{ssl_port},"
                 f"SASL_SSL://127.0.0.1:{sasl_ssl_port}")
    lines = [
        f"listeners={listeners}",
        f"advertised.listeners={listeners}",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={pki.broker_p12}",
        f"ssl.keystore.password={BROKER_STORE_PASSWORD}",
        f"ssl.key.password={BROKER_STORE_PASSWORD}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={pki.ca_pem}",
        "listener.name.ssl.ssl.client.auth=required",
    ]
    for listener in ("sasl_plaintext", "sasl_ssl"):
        lines.append(f"listener.name.{listener}.plain.sasl.jaas.config={plain_jaas}")
        for mechanism in ("scram-sha-256", "scram-sha-512"):
            lines.append(f"listener.name.{listener}.{mechanism}.sasl.jaas.config={scram_jaas}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def secure_broker(directory: Path, plain_users: dict[str, str] | None = None
                  ) -> Iterator[SecureBroker]:
    """One private broker with PLAINTEXT, SASL_PLAINTEXT, SSL and SASL_SSL listeners
    (`plain_users`: more SASL PLAIN users, name -> password)."""
    pki = make_pki(directory / "pki")
    port = free_port_pair()
    sasl_port, ssl_port, sasl_ssl_port = _free_port(), _free_port(), _free_port()
    while len({port, port + 1, sasl_port, ssl_port, sasl_ssl_port}) < 5:
        sasl_port, ssl_port, sasl_ssl_port = _free_port(), _free_port(), _free_port()
    properties = directory / "security.properties"
    properties.write_text(broker_properties(port, sasl_port, ssl_port, sasl_ssl_port, pki,
                                            plain_users))
    with private_broker(port, extra_properties=properties,
                        scram_users=f"{SCRAM_USER[0]}:{SCRAM_USER[1]}") as (bootstrap, handle):
        yield SecureBroker(plaintext=bootstrap, sasl_plaintext=f"127.0.0.1:{sasl_port}",
                           ssl=f"127.0.0.1:{ssl_port}", sasl_ssl=f"127.0.0.1:{sasl_ssl_port}",
                           pki=pki, handle=handle)

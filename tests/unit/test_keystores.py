"""The JKS reader (evgate/kafka/keystores.py) against stores written by the JDK's keytool."""
from __future__ import annotations

import copy
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from evgate.kafka.keystores import KeyStoreError, is_java_keystore, read_jks
from tests.support.kafka_security import make_pki

KEYTOOL = shutil.which("keytool")
pytestmark = pytest.mark.skipif(KEYTOOL is None, reason="keytool (a JDK) is not installed")


def _keytool(*args: str) -> None:
    done = subprocess.run([KEYTOOL, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A JKS trust store holding the test CA, and a JKS key store with an EC and an RSA key
    (key passwords differing from the store password), both written by keytool."""
    directory = tmp_path_factory.mktemp("jks")
    pki = make_pki(directory)
    trust = directory / "truststore.jks"
    _keytool("-importcert", "-noprompt", "-storetype", "JKS", "-keystore", str(trust),
             "-storepass", "trust-pw", "-alias", "ca", "-file", str(pki.ca_pem))
    keys = directory / "keystore.jks"
    for alias, algorithm in (("ec", "EC"), ("rsa", "RSA")):
        _keytool("-genkeypair", "-storetype", "JKS", "-keystore", str(keys), "-storepass",
                 "store-pw", "-keypass", "key-pw", "-alias", alias, "-keyalg", algorithm,
                 "-dname", f"CN={alias}", "-validity", "2")
    return pki, trust, keys


def test_trust_store_certificates(stores):
    pki, trust, _ = stores
    data = trust.read_bytes()
    assert is_java_keystore(data)
    store = read_jks(data, "trust-pw")
    ca = x509.load_pem_x509_certificate(pki.ca_pem.read_bytes())
    assert store.certificates == [ca] and store.keys == []


def test_key_store_private_keys_match_their_certificates(stores):
    _, _, keys = stores
    store = read_jks(keys.read_bytes(), "store-pw", "key-pw")
    assert sorted(entry.alias for entry in store.keys) == ["ec", "rsa"]
    for entry in store.keys:
        public = entry.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert public == entry.chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert entry.chain[0].subject.rfc4514_string() == f"CN={entry.alias}"


@pytest.mark.parametrize("store_password, key_password, message", [
    ("wrong", "key-pw", "store password is wrong"),
    ("store-pw", "wrong", "key password is wrong"),
    ("store-pw", None, "key password is wrong"),  # the store password does not open the keys
])
def test_wrong_passwords_are_named(stores, store_password, key_password, message):
    _, _, keys = stores
    with pytest.raises(KeyStoreError, match=message):
        read_jks(keys.read_bytes(), store_password, key_password)


def test_damaged_and_foreign_stores_are_clear_errors(stores):
    _, trust, _ = stores
    data = trust.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for bad, message in ((bytes(flipped), "wrong, or the store is damaged"),
                         (data[:40], "wrong, or the store is damaged"),
                         (b"\xce\xce\xce\xce" + data[4:], "JCEKS"),
                         (b"-----BEGIN CERTIFICATE-----", "not a Java KeyStore")):
        with pytest.raises(KeyStoreError, match=message):
            read_jks(bad, "trust-pw")
    # unchecked (no password), a truncated store still fails cleanly, never an IndexError
    with pytest.raises(KeyStoreError, match="truncated"):
        read_jks(data[:60] + hashlib_pad(), None)


def hashlib_pad() -> bytes:
    return b"\x00" * 20


def test_fingerprints_survive_the_round_trip(stores):
    pki, trust, _ = stores
    cert = read_jks(trust.read_bytes(), "trust-pw").certificates[0]
    expected = x509.load_pem_x509_certificate(pki.ca_pem.read_bytes())
    assert cert.fingerprint(hashes.SHA256()) == expected.fingerprint(hashes.SHA256())


# -- through the Kafka security mapping (evgate/kafka/security/) ------------------------------
def _conf(ssl: dict) -> dict:
    from evgate.kafka import security as sec
    return sec.librdkafka_security({"protocol": "SSL", "ssl": ssl})


def test_jks_trust_store_becomes_the_ca_pem(stores):
    pki, trust, _ = stores
    for declared in ("JKS", "PKCS12", None):  # the 3.20 collection names .jks files PKCS12
        store = {"location": str(trust), "password": "trust-pw"}
        if declared:
            store["type"] = declared
        conf = _conf({"trustStore": store})
        assert conf["ssl.ca.pem"] == pki.ca_pem.read_text(), declared
        assert "ssl.ca.location" not in conf


def test_jks_key_store_goes_to_librdkafka_in_memory(tmp_path):
    from evgate.kafka.keystores import read_jks
    keys = tmp_path / "client.jks"
    _keytool("-genkeypair", "-storetype", "JKS", "-keystore", str(keys), "-storepass",
             "store-pw", "-keypass", "key-pw", "-alias", "client", "-keyalg", "EC",
             "-dname", "CN=client", "-validity", "2")
    conf = _conf({"keyStore": {"type": "JKS", "location": str(keys), "password": "store-pw",
                               "keyPassword": "key-pw"}})
    entry = read_jks(keys.read_bytes(), "store-pw", "key-pw").keys[0]
    key = serialization.load_pem_private_key(conf["ssl.key.pem"].encode(), None)
    assert key.private_numbers() == entry.private_key.private_numbers()
    assert x509.load_pem_x509_certificate(conf["ssl.certificate.pem"].encode()) == entry.chain[0]
    assert not any(k.endswith(".location") for k in conf)


def test_unreadable_jks_is_a_runtime_error_naming_the_store(stores, tmp_path):
    from evgate.kafka import security as sec
    _, trust, keys = stores
    cases = [({"trustStore": {"type": "JKS", "location": str(trust), "password": "nope"}},
              "trustStore: the JKS store password is wrong"),
             ({"keyStore": {"type": "JKS", "location": str(keys), "password": "store-pw",
                            "keyPassword": "nope"}}, "keyStore: entry"),
             ({"keyStore": {"type": "JKS", "location": str(keys), "password": "store-pw",
                            "keyPassword": "key-pw"}}, "exactly one private key"),
             ({"trustStore": {"type": "JKS", "location": str(tmp_path / "gone.jks"),
                              "password": "x"}}, "does not exist on this gateway")]
    for ssl, needle in cases:
        with pytest.raises(sec.KafkaSecurityError) as info:
            _conf(ssl)
        assert needle in info.value.message, info.value.message


def test_inline_jks_content_is_checked_at_validation(stores):
    import base64

    from evgate.kafka import security as sec
    _, trust, _ = stores
    content = base64.b64encode(trust.read_bytes()).decode()
    good = {"protocol": "SSL", "ssl": {"trustStore": {"type": "JKS", "content": content,
                                                      "password": "trust-pw"}}}
    assert list(sec.problems(good)) == []
    bad = copy.deepcopy(good)
    bad["ssl"]["trustStore"]["password"] = "wrong"
    assert list(sec.problems(bad)) == [
        (".security.ssl.trustStore.content",
         "the JKS store password is wrong, or the store is damaged")]
    bad["ssl"]["trustStore"].update(password="trust-pw", content="not base64!")
    assert [m for _, m in sec.problems(bad)] == ["must be the base64 of a JKS file"]

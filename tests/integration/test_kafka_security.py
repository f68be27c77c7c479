"""Kafka security through a real gunicorn gateway against a real Apache Kafka 4.1 broker.

ONE private broker for the module (tests/support/kafka_security.py) with PLAINTEXT,
SASL_PLAINTEXT (PLAIN + SCRAM-SHA-256/512), SSL (client certificate required) and SASL_SSL
listeners and a CA made by the test; ONE gateway with an API per protocol / store shape. Each
API takes a POST (202 only once Kafka acknowledged) and streams it back over SSE through the
same security settings; a plain PLAINTEXT consumer confirms the record is in the topic. A wrong
password answers 503 and logs the broker's authentication error; no secret appears in the
gateway's log.
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import uuid

import pytest
from click.testing import CliRunner

from tests.support.gateway import GatewayProcess, import_apis
from tests.support.kafka_broker import consume_all, create_topic
from tests.support.kafka_security import (CLIENT_KEY_PASSWORD, CLIENT_P12_PASSWORD,
                                          PLAIN_USER, SCRAM_USER, SECRETS, TRUSTSTORE_PASSWORD,
                                          secure_broker)
from tests.support.streams import SseClient, stream_api

pytestmark = pytest.mark.integration

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
WRONG_PASSWORD = "not-the-Password-7"
SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 1000}}
POST = {"type": "http-post"}


def _jaas(module: str, user: tuple[str, str]) -> str:
    return f'{module} required username="{user[0]}" password="{user[1]}";'


def _cases(broker) -> dict[str, tuple[str, dict]]:
    """name -> (bootstrap, security object), one per protocol and store shape."""
    pki = broker.pki
    p12 = lambda path: base64.b64encode(path.read_bytes()).decode()  # noqa: E731
    return {
        "sasl-plain": (broker.sasl_plaintext, {"protocol": "SASL_PLAINTEXT", "sasl": {
            "saslMechanism": "PLAIN", "saslJaasConfig": _jaas(PLAIN, PLAIN_USER)}}),
        "scram-256": (broker.sasl_plaintext, {"protocol": "SASL_PLAINTEXT", "sasl": {
            "saslMechanism": "SCRAM-SHA-256", "saslJaasConfig": _jaas(SCRAM, SCRAM_USER)}}),
        "scram-512": (broker.sasl_plaintext, {"protocol": "SASL_PLAINTEXT", "sasl": {
            "saslMechanism": "SCRAM-SHA-512", "saslJaasConfig": _jaas(SCRAM, SCRAM_USER)}}),
        # mTLS with PEM files (encrypted key), hostname verification on (SAN 127.0.0.1).
        "ssl-pem-files": (broker.ssl, {"protocol": "SSL", "ssl": {
            "trustStore": {"type": "PEM", "location": str(pki.ca_pem)},
            "keyStore": {"type": "PEM", "certificateLocation": str(pki.client_cert_pem),
                         "keyLocation": str(pki.client_key_pem),
                         "keyPassword": CLIENT_KEY_PASSWORD}}}),
        # mTLS with PKCS#12 files: a Java trust store and a key store.
        "ssl-p12-files": (broker.ssl, {"protocol": "SSL", "ssl": {
            "trustStore": {"type": "PKCS12", "location": str(pki.truststore_p12),
                           "password": TRUSTSTORE_PASSWORD},
            "keyStore": {"type": "PKCS12", "location": str(pki.client_p12),
                         "password": CLIENT_P12_PASSWORD}}}),
        # mTLS with inline stores: base64 PKCS#12 trust store, inline PEM certificate + key.
        "ssl-inline": (broker.ssl, {"protocol": "SSL", "ssl": {
            "trustStore": {"type": "PKCS12", "content": p12(pki.truststore_p12),
                           "password": TRUSTSTORE_PASSWORD},
            "keyStore": {"type": "PEM", "certificateChain": pki.client_cert_pem.read_text(),
                         "key": pki.client_key_plain}}}),
        # SASL over TLS, reached as "localhost" (DNS SAN), inline PEM trust anchor.
        "sasl-ssl": (broker.sasl_ssl.replace("127.0.0.1", "localhost"), {
            "protocol": "SASL_SSL",
            "sasl": {"saslMechanism": "SCRAM-SHA-512", "saslJaasConfig": _jaas(SCRAM, SCRAM_USER)},
            "ssl": {"trustStore": {"type": "PEM", "certificates": pki.ca_pem.read_text()},
                    "hostnameVerifier": True}}),
    }


JKS_PASSWORD = "jks-store-Secret-8"


def _jks_cases(broker, directory) -> dict[str, tuple[str, dict]]:
    """The test PKI's trust and key stores converted to JKS by keytool (a JDK), as Gravitee
    users hold them; read by evgate/kafka/keystores.py. None without keytool."""
    keytool = shutil.which("keytool")
    if keytool is None:
        return {}
    pki = broker.pki
    trust, keys = directory / "truststore.jks", directory / "client.jks"
    for args in (["-importcert", "-noprompt", "-alias", "ca", "-file", str(pki.ca_pem),
                  "-keystore", str(trust), "-storetype", "JKS", "-storepass", JKS_PASSWORD],
                 ["-importkeystore", "-noprompt", "-srckeystore", str(pki.client_p12),
                  "-srcstoretype", "PKCS12", "-srcstorepass", CLIENT_P12_PASSWORD,
                  "-destkeystore", str(keys), "-deststoretype", "JKS",
                  "-deststorepass", JKS_PASSWORD, "-destkeypass", JKS_PASSWORD]):
        subprocess.run([keytool, *args], check=True, capture_output=True, timeout=120)
    return {
        # mTLS with JKS trust and key stores (the 4.0 collection's "Kafka Advanced - SSL")
        "ssl-jks-files": (broker.ssl, {"protocol": "SSL", "ssl": {
            "trustStore": {"type": "JKS", "location": str(trust), "password": JKS_PASSWORD},
            "keyStore": {"type": "JKS", "location": str(keys), "password": JKS_PASSWORD}}}),
        # SASL over TLS with a JKS trust store ("Kafka Advanced - SASL_SSL")
        "sasl-ssl-jks": (broker.sasl_ssl, {
            "protocol": "SASL_SSL",
            "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": _jaas(PLAIN, PLAIN_USER)},
            "ssl": {"trustStore": {"type": "JKS", "location": str(trust),
                                   "password": JKS_PASSWORD}}}),
    }


def _api(name: str, bootstrap: str, security: dict, topic: str) -> dict:
    # 4.x places security in sharedConfigurationOverride; effective_configuration merges it.
    api = stream_api(f"/sec/{name}", [POST, SSE], {
        "bootstrapServers": bootstrap, "topics": [topic],
        "consumer": {"enabled": True, "autoOffsetReset": "earliest"},
        "producer": {"enabled": True}}, endpoint_type="kafka-advanced")
    api["endpointGroups"][0]["endpoints"][0]["sharedConfigurationOverride"] = {
        "security": security}
    return api


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kafka-security")
    with secure_broker(directory) as broker:
        cases = _cases(broker)
        cases.update(_jks_cases(broker, directory))
        cases["wrong-password"] = (broker.sasl_plaintext, {
            "protocol": "SASL_PLAINTEXT", "sasl": {
                "saslMechanism": "PLAIN",
                "saslJaasConfig": _jaas(PLAIN, (PLAIN_USER[0], WRONG_PASSWORD))}})
        cases["missing-store"] = (broker.ssl, {"protocol": "SSL", "ssl": {"trustStore": {
            "type": "PKCS12", "location": str(directory / "absent.p12"),
            "password": TRUSTSTORE_PASSWORD}}})
        topics = {name: f"sec-{name}-{uuid.uuid4().hex[:8]}" for name in cases}
        for topic in topics.values():
            create_topic(broker.plaintext, topic)
        database_url = f"sqlite:///{directory}/evgate.db"
        apis = import_apis(database_url, [_api(name, bootstrap, security, topics[name])
                                          for name, (bootstrap, security) in cases.items()])
        gateway = GatewayProcess(
            database_url=database_url, kafka_bootstrap=broker.plaintext, workers=2,
            log_path=directory / "gateway.log",
            env={"EVGATE_LOG_LEVEL": "debug", "EVGATE_PRODUCE_TIMEOUT_MS": "4000",
                 "EVGATE_KAFKA_CONSUMER_SETUP_TIMEOUT_MS": "4000"})
        gateway.start()
        try:
            yield {"broker": broker, "gateway": gateway, "topics": topics,
                   "database_url": database_url,
                   "ids": {name: api["id"] for name, api in zip(cases, apis)}}
        finally:
            gateway.stop()


SECURE = ["sasl-plain", "scram-256", "scram-512", "ssl-pem-files", "ssl-p12-files",
          "ssl-inline", "sasl-ssl",
          pytest.param("ssl-jks-files", marks=pytest.mark.skipif(
              shutil.which("keytool") is None, reason="keytool (a JDK) is not installed")),
          pytest.param("sasl-ssl-jks", marks=pytest.mark.skipif(
              shutil.which("keytool") is None, reason="keytool (a JDK) is not installed"))]


@pytest.mark.parametrize("name", SECURE)
def test_produce_and_stream_through_the_secured_listener(setup, name):
    gateway, topic = setup["gateway"], setup["topics"][name]
    body = f"hello over {name} {uuid.uuid4().hex[:6]}"
    status, _, raw = gateway.request("POST", f"/sec/{name}", body,
                                     {"Content-Type": "text/plain"})
    assert status == 202, (status, raw, gateway.log())
    # The record is in Kafka (read on the broker's PLAINTEXT listener by a plain consumer)...
    records = consume_all(setup["broker"].plaintext, topic, 1, timeout=20)
    assert [r.value().decode() for r in records] == [body]
    # ...and the gateway's consumer, with the same security settings, streams it back.
    client = SseClient(gateway.url, f"/sec/{name}")
    try:
        assert client.status == 200
        events = client.events(1, deadline=20)
    finally:
        client.close()
    assert events[0]["data"] == body


def test_wrong_password_is_503_and_the_auth_error_is_logged_without_secrets(setup):
    gateway = setup["gateway"]
    status, _, raw = gateway.request("POST", "/sec/wrong-password", "never stored",
                                     {"Content-Type": "text/plain"})
    assert status == 503, raw
    assert WRONG_PASSWORD not in raw.decode()
    client = SseClient(gateway.url, "/sec/wrong-password")
    try:
        assert client.status == 503
        assert WRONG_PASSWORD not in client.response.read().decode()
    finally:
        client.close()
    assert consume_all(setup["broker"].plaintext, setup["topics"]["wrong-password"], 1,
                       timeout=2) == []
    log = gateway.log_path.read_text(errors="replace")
    assert "Authentication failed" in log or "SASL authentication error" in log, log[-3000:]


def test_a_store_missing_on_the_gateway_is_a_clear_503(setup):
    gateway = setup["gateway"]
    status, body = gateway.json("POST", "/sec/missing-store", {"a": 1})
    assert status == 503, body
    assert body["key"] == "KAFKA_SECURITY_CONFIGURATION"
    assert "security.ssl.trustStore.location" in body["message"]
    assert "does not exist on this gateway" in body["message"]
    client = SseClient(gateway.url, "/sec/missing-store")
    try:
        assert client.status == 503
    finally:
        client.close()


def test_cli_kafka_check_uses_the_apis_security(setup, monkeypatch):
    from evgate.cli import main
    monkeypatch.setenv("EVGATE_DATABASE_URL", setup["database_url"])
    runner = CliRunner()
    ok = runner.invoke(main, ["--json", "kafka", "check", "--api", setup["ids"]["scram-512"],
                              "--timeout", "10"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert setup["broker"].sasl_plaintext in ok.output
    bad = runner.invoke(main, ["kafka", "check", "--api", setup["ids"]["wrong-password"],
                               "--timeout", "3"], catch_exceptions=False)
    assert bad.exit_code == 1
    assert WRONG_PASSWORD not in bad.output


def test_a_persistent_kafka_error_is_logged_once_per_interval(setup):
    """The wrong-password API stays deployed; its clients retry about twice a second. Each
    client logs a distinct error at most once per 10 s (evgate/kafka/threads.py
    RepeatLimiter), so two lines of one message from one client are >= 10 s apart (the
    catch-up readers' spare consumers are clients of their own)."""
    import re
    from collections import defaultdict
    from datetime import datetime
    line_pattern = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \[(\d+)\] "
                              r"(evgate\.kafka\.\S+): (.*)")
    seen: dict[tuple, list[datetime]] = defaultdict(list)
    for line in setup["gateway"].log_path.read_text(errors="replace").splitlines():
        match = line_pattern.match(line)
        if match is None or "Authentication failed" not in match[4]:
            continue
        message = re.sub(r"\(\d+ similar message\(s\) suppressed in the last 10s\)", "",
                         match[4])
        # one limiter per client: librdkafka names the client first ("FAIL [evgate-spare3-...]"),
        # kept verbatim (two spare readers differ only in their numbers)
        client = re.match(r"\S+ \[([^\]]+)\]", message)
        key = (match[2], match[3], client and client[1], re.sub(r"\d+", "#", message))
        seen[key].append(datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f"))
    assert seen, "the wrong password's authentication error should be logged"
    for key, times in seen.items():
        gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
        assert all(gap >= 9 for gap in gaps), (key, gaps)


def test_no_secret_reaches_the_gateway_log(setup):
    """Last in the module: every API above has connected (or failed to) by now."""
    log = setup["gateway"].log_path.read_text(errors="replace")
    assert "kafka producer" in log and "'sasl.password': '****'" in log
    leaks = [s for s in (*SECRETS, WRONG_PASSWORD, JKS_PASSWORD, *setup["broker"].pki.key_markers) if s in log]
    assert leaks == [], "secrets in the gateway log"
    assert "PRIVATE KEY" not in log

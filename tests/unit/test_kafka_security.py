"""Kafka security from the definition (evgate/kafka/security/): JAAS parsing, the
Gravitee -> librdkafka mapping, PEM/PKCS#12/JKS stores, definition errors, masking in the
management API. The real broker is exercised in tests/integration/test_kafka_security.py."""
from __future__ import annotations

import base64
import copy
import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from evgate.config import Config
from evgate.definition import parse_definition
from evgate.errors import DefinitionError
from evgate.kafka import security as sec
from evgate.kafka.client_config import common_config, mask, producer_config
from evgate.kafka.consumer_pool import consumer_config
from evgate.kafka.group_consumer import group_consumer_config
from tests.support.kafka_security import (CLIENT_KEY_PASSWORD, CLIENT_P12_PASSWORD,
                                          TRUSTSTORE_PASSWORD, make_pki)

from .management_fixtures import (B, Api, api, api_definition, client,  # noqa: F401
                                  fast_hashing, management)

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
COLLECTION = (Path(__file__).resolve().parents[1] / "fixtures" / "gravitee"
              / "gravitee-v4-beta-3.20.postman_collection.json")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def definition(security, path="/secure"):
    return {
        "name": "secure", "apiVersion": "1", "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka", "configuration": {
                "bootstrapServers": "kafka:9092", "topics": ["t"], "security": security}}]}],
    }


def problems_of(security):
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(security))
    return info.value.problems


PREFIX = "$.endpointGroups[0].endpoints[0].configuration.security"


# -- JAAS ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, username, password", [
    (f'{PLAIN} required username="u" password="p";', "u", "p"),
    (f"{PLAIN} required username='u' password='p w';", "u", "p w"),
    (f'{PLAIN}  REQUIRED\n  username="u"\n  password="a\\"b\\\\c";  ', "u", 'a"b\\c'),
    (f"{SCRAM} required username=alice password=s3cr3t.x-y_z$;", "alice", "s3cr3t.x-y_z$"),
    (f'{SCRAM} optional /* c */ username="u" // note\n password="p=;x";', "u", "p=;x"),
    (f'{PLAIN} required username="" password="p" serviceName="kafka";', "", "p"),
])
def test_jaas_is_parsed(text, username, password):
    jaas = sec.parse_jaas(text)
    assert jaas.options["username"] == username
    assert jaas.options["password"] == password
    assert sec.parse_jaas(jaas.format()).options == jaas.options  # format round-trips


@pytest.mark.parametrize("text, needle", [
    (f'{PLAIN} required username="u" password="hunter2"', "must end with ';'"),
    (f'{PLAIN} username="u" password="hunter2";', "control flag"),
    (f'{PLAIN} required username="u" password="hunter2;', "unterminated quoted value"),
    (f'{PLAIN} required username="u" password "hunter2";', "expected '=' after option 'password'"),
    (f'{PLAIN} required username="u" password=;', "option 'password' has no value"),
    (f'{PLAIN} required password="hunter2" password="hunter2";', "given twice"),
    (f'{PLAIN} required username="u" password="hunter2"; {PLAIN} required;', "after ';'"),
    ('username="u" password="hunter2";', "login module class name"),
    ("", "non-empty string"),
])
def test_malformed_jaas_says_what_is_wrong_without_the_password(text, needle):
    with pytest.raises(sec.JaasError) as info:
        sec.parse_jaas(text)
    assert needle in str(info.value)
    assert "hunter2" not in str(info.value)


def test_malformed_jaas_is_a_definition_error_at_its_path():
    found = problems_of({"protocol": "SASL_PLAINTEXT", "sasl": {
        "saslMechanism": "PLAIN",
        "saslJaasConfig": f'{PLAIN} required username="u" password="hunter2"'}})
    assert found == [{"path": f"{PREFIX}.sasl.saslJaasConfig", "message": "must end with ';'"}]


# -- SASL mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism, module, expected", [
    ("PLAIN", PLAIN, "PLAIN"),
    (None, PLAIN, "PLAIN"),                      # inferred from the login module
    ("SCRAM-SHA-256", SCRAM, "SCRAM-SHA-256"),
    ("scram_sha_512", SCRAM, "SCRAM-SHA-512"),   # spelled as Gravitee's docs do
])
def test_sasl_maps_to_librdkafka_username_and_password(mechanism, module, expected):
    security = {"protocol": "sasl_plaintext", "sasl": {
        "saslJaasConfig": f'{module} required username="svc" password="pa ss\\"w";'}}
    if mechanism:
        security["sasl"]["saslMechanism"] = mechanism
    parse_definition(definition(security))
    assert sec.librdkafka_security(security) == {
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": expected,
        "sasl.username": "svc", "sasl.password": 'pa ss"w'}


@pytest.mark.parametrize("mechanism", ["GSSAPI", "OAUTHBEARER", "AWS_MSK_IAM"])
def test_unsupported_mechanisms_are_a_clear_400(mechanism):
    found = problems_of({"protocol": "SASL_SSL", "sasl": {
        "saslMechanism": mechanism, "saslJaasConfig": "com.sun.security.auth.module."
                                                      "Krb5LoginModule required;"}})
    assert found[0]["path"] == f"{PREFIX}.sasl.saslMechanism"
    assert "not supported" in found[0]["message"]
    assert "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512" in found[0]["message"]


@pytest.mark.parametrize("sasl, path, needle", [
    (None, ".sasl", "is required with a SASL protocol"),
    ({"saslJaasConfig": f'{SCRAM} required username="u" password="p";'}, ".sasl.saslMechanism",
     "is required with ScramLoginModule"),
    ({"saslMechanism": "SCRAM-SHA-256",
      "saslJaasConfig": f'{PLAIN} required username="u" password="p";'},
     ".sasl.saslJaasConfig", "does not match saslMechanism SCRAM-SHA-256"),
    ({"saslMechanism": "PLAIN", "saslJaasConfig": f'{PLAIN} required username="u";'},
     ".sasl.saslJaasConfig", "option 'password' is missing"),
    ({"saslMechanism": "PLAIN", "saslJaasConfig": 'x.Other required username="u" password="p";'},
     ".sasl.saslJaasConfig", "login module 'x.Other' is not supported"),
    ({"saslMechanism": "MD5", "saslJaasConfig": f'{PLAIN} required username="u" password="p";'},
     ".sasl.saslMechanism", "unknown SASL mechanism"),
])
def test_sasl_problems(sasl, path, needle):
    security = {"protocol": "SASL_PLAINTEXT"}
    if sasl is not None:
        security["sasl"] = sasl
    found = problems_of(security)
    assert any(p["path"] == PREFIX + path and needle in p["message"] for p in found), found


def test_unknown_protocol_is_refused():
    found = problems_of({"protocol": "TLS"})
    assert found == [{"path": f"{PREFIX}.protocol",
                      "message": "must be one of PLAINTEXT, SASL_PLAINTEXT, SASL_SSL, SSL"}]


def test_plaintext_adds_nothing_and_ignores_ssl_fields():
    assert sec.librdkafka_security({"protocol": "PLAINTEXT", "ssl": {"trustStore": "junk"}}) == {}
    assert sec.librdkafka_security({}) == {}


# -- stores -------------------------------------------------------------------------------------
def test_pem_trust_store_file_and_hostname_verification(pki):
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {
        "trustStore": {"type": "PEM", "path": str(pki.ca_pem)}}})
    assert conf == {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca_pem),
                    "ssl.endpoint.identification.algorithm": "https"}
    off = sec.librdkafka_security({"protocol": "SSL", "ssl": {"hostnameVerifier": False}})
    assert off["ssl.endpoint.identification.algorithm"] == "none"


def test_inline_pem_trust_store_single_and_several_certificates(pki, tmp_path):
    one = pki.ca_pem.read_text()
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {
        "trustStore": {"type": "PEM", "content": one}}})
    assert conf["ssl.ca.pem"] == one
    # librdkafka reads only the first certificate of ssl.ca.pem: several go through a file.
    other = make_pki(tmp_path / "other").ca_pem.read_text()
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {
        "trustStore": {"type": "PEM", "certificates": other + one}}})
    assert "ssl.ca.pem" not in conf
    assert Path(conf["ssl.ca.location"]).read_text() == other + one


def test_pkcs12_trust_store_file_and_base64_content(pki):
    ca = pki.ca_pem.read_text()
    by_file = sec.librdkafka_security({"protocol": "SSL", "ssl": {"trustStore": {
        "type": "PKCS12", "location": str(pki.truststore_p12), "password": TRUSTSTORE_PASSWORD}}})
    assert by_file["ssl.ca.pem"] == ca
    content = base64.b64encode(pki.truststore_p12.read_bytes()).decode()
    inline = sec.librdkafka_security({"protocol": "SSL", "ssl": {"trustStore": {
        "type": "PKCS12", "content": content, "password": TRUSTSTORE_PASSWORD}}})
    assert inline["ssl.ca.pem"] == ca


def test_pkcs12_wrong_password_is_a_503_without_the_password(pki):
    with pytest.raises(sec.KafkaSecurityError) as info:
        sec.librdkafka_security({"protocol": "SSL", "ssl": {"trustStore": {
            "type": "PKCS12", "location": str(pki.truststore_p12), "password": "hunter2"}}})
    assert info.value.status == 503
    assert "security.ssl.trustStore" in info.value.message
    assert "password does not open it" in info.value.message
    assert "hunter2" not in info.value.message


def test_pkcs12_key_store_file_uses_librdkafka_and_content_goes_in_memory(pki):
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": {
        "type": "PKCS12", "location": str(pki.client_p12), "password": CLIENT_P12_PASSWORD}}})
    assert conf["ssl.keystore.location"] == str(pki.client_p12)
    assert conf["ssl.keystore.password"] == CLIENT_P12_PASSWORD
    content = base64.b64encode(pki.client_p12.read_bytes()).decode()
    inline = sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": {
        "type": "PKCS12", "content": content, "password": CLIENT_P12_PASSWORD}}})
    assert inline["ssl.certificate.pem"].startswith(pki.client_cert_pem.read_text())
    assert inline["ssl.key.pem"].startswith("-----BEGIN PRIVATE KEY-----")


def test_pem_key_store_split_files_encrypted_key(pki):
    store = {"type": "PEM", "certificateLocation": str(pki.client_cert_pem),
             "keyLocation": str(pki.client_key_pem), "keyPassword": CLIENT_KEY_PASSWORD}
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": store}})
    assert conf["ssl.certificate.location"] == str(pki.client_cert_pem)
    assert conf["ssl.key.location"] == str(pki.client_key_pem)
    assert conf["ssl.key.password"] == CLIENT_KEY_PASSWORD
    without = {k: v for k, v in store.items() if k != "keyPassword"}
    with pytest.raises(sec.KafkaSecurityError, match="encrypted: give keyPassword"):
        sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": without}})
    with pytest.raises(sec.KafkaSecurityError, match="cannot be read") as info:
        sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": {
            **store, "keyPassword": "hunter2"}}})
    assert "hunter2" not in info.value.message
    with pytest.raises(sec.KafkaSecurityError, match="not encrypted"):
        sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": {
            "type": "PEM", "certContent": pki.client_cert_pem.read_text(),
            "keyContent": pki.client_key_plain, "keyPassword": "x"}}})


def test_pem_key_store_inline_and_combined_content(pki):
    cert, key = pki.client_cert_pem.read_text(), pki.client_key_plain
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": {
        "type": "PEM", "certContent": cert, "keyContent": key}}})
    assert conf["ssl.certificate.pem"] == cert and conf["ssl.key.pem"] == key
    combined = sec.librdkafka_security({"protocol": "SSL", "ssl": {"keyStore": {
        "type": "PEM", "content": cert + key}}})
    assert combined["ssl.key.pem"] == cert + key


def test_jks_store_types_are_accepted_and_jceks_refused_with_how_to_convert(tmp_path):
    """JKS is read by evgate/kafka/keystores.py (tests/unit/test_keystores.py); a JCEKS file,
    whatever its declared type, is refused on the gateway with the conversion command."""
    parse_definition(definition({"protocol": "SSL", "ssl": {"trustStore": {
        "type": "JKS", "location": "/etc/kafka/truststore.jks", "password": "x"}}}))
    jceks = tmp_path / "kafka.truststore.jks"
    jceks.write_bytes(b"\xce\xce\xce\xce\x00\x00\x00\x02" + b"\x00" * 32)
    with pytest.raises(sec.KafkaSecurityError, match="JCEKS") as info:
        sec.librdkafka_security({"protocol": "SSL", "ssl": {"trustStore": {
            "type": "PKCS12", "location": str(jceks), "password": "gravitee"}}})
    assert "keytool -importkeystore" in info.value.message


def test_missing_store_file_is_a_503_naming_the_field():
    with pytest.raises(sec.KafkaSecurityError) as info:
        sec.librdkafka_security({"protocol": "SSL", "ssl": {"trustStore": {
            "type": "PEM", "location": "/nonexistent/ca.pem"}}})
    assert "security.ssl.trustStore.location" in info.value.message
    assert "does not exist on this gateway" in info.value.message


@pytest.mark.parametrize("store, needle", [
    ({"type": "PEM"}, "needs 'location'"),
    ({"type": "PKCS12", "location": "a.p12", "content": "AAAA"}, "not both"),
    ({"type": "XML", "location": "a"}, "must be one of PEM, PKCS12"),
    ({"type": "PEM", "certificateLocation": "c.pem"}, "exactly one of keyLocation"),
])
def test_store_shape_problems(store, needle):
    found = problems_of({"protocol": "SSL", "ssl": {"keyStore": store}})
    assert any(needle in p["message"] for p in found), found


# -- every client gets it ------------------------------------------------------------------------
def test_every_client_builder_carries_the_security_settings():
    endpoint = {"bootstrapServers": "k:9093", "topics": ["t"], "security": {
        "protocol": "SASL_SSL", "sasl": {
            "saslMechanism": "SCRAM-SHA-512",
            "saslJaasConfig": f'{SCRAM} required username="u" password="p";'}}}
    config = Config.from_env({})
    builders = [common_config(endpoint, config), producer_config(endpoint, config),
                consumer_config(endpoint, config), group_consumer_config(endpoint, config, "g")]
    for conf in builders:
        assert conf["security.protocol"] == "SASL_SSL"
        assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
        assert (conf["sasl.username"], conf["sasl.password"]) == ("u", "p")
        assert conf["ssl.endpoint.identification.algorithm"] == "https"


def test_mask_hides_passwords_and_private_keys_and_shortens_pem(pki):
    conf = {"sasl.password": "p", "ssl.key.password": "k", "ssl.keystore.password": "s",
            "ssl.key.pem": pki.client_key_plain, "ssl.ca.pem": pki.ca_pem.read_text(),
            "sasl.username": "u", "bootstrap.servers": "b:1"}
    text = json.dumps(mask(conf))
    for secret in ('"p"', '"k"', '"s"', "PRIVATE KEY", "BEGIN CERTIFICATE"):
        assert secret not in text
    assert mask(conf)["sasl.username"] == "u"


# -- the collection -----------------------------------------------------------------------------
def _collection_bodies(folder_prefix):
    collection = json.loads(COLLECTION.read_text())
    found = []

    def walk(items, path):
        for item in items:
            here = path + [item["name"]]
            if "item" in item:
                walk(item["item"], here)
            elif item["name"] == "Create API" and any(p.startswith(folder_prefix) for p in here):
                found.append((" / ".join(here), json.loads(item["request"]["body"]["raw"])))
    walk(collection["item"], [])
    return found


def test_the_collections_kafka_advanced_definitions_are_accepted():
    bodies = _collection_bodies("Kafka Advanced")
    names = {name.split(" / ")[1] for name, _ in bodies}
    assert {"Kafka Advanced - SASL_PLAINTEXT", "Kafka Advanced - SASL_SSL",
            "Kafka Advanced - SSL"} <= names
    for name, body in bodies:
        api = parse_definition(body)
        conf = api.endpointGroups[0].endpoints[0].configuration
        security = conf.get("security") or {}
        if security.get("sasl"):
            # The JAAS string is parsed into librdkafka's username/password.
            props = {k: v for k, v in sec.librdkafka_security(
                {**security, "ssl": {}}).items()}
            assert props["sasl.username"] == "gravitee_user", name
            assert props["sasl.password"] == "gravitee_password", name
            assert props["sasl.mechanism"] == "PLAIN", name


# -- masking in the management API ---------------------------------------------------------------
def secure_definition(path="/secure-orders"):
    return api_definition(path=path, endpointGroups=[{
        "name": "default", "type": "kafka", "endpoints": [{
            "name": "default", "type": "kafka", "inheritConfiguration": False,
            "configuration": {"bootstrapServers": "kafka:9092", "topics": ["orders"]},
            "sharedConfigurationOverride": {"security": {
                "protocol": "SASL_SSL",
                "sasl": {"saslMechanism": "PLAIN",
                         "saslJaasConfig": f'{PLAIN} required username="svc" password="hunter2";'},
                "ssl": {"trustStore": {"type": "PKCS12", "location": "/etc/t.p12",
                                       "password": "trust-pw"},
                        "keyStore": {"type": "PEM", "certificateLocation": "/etc/c.pem",
                                     "key": "-----BEGIN PRIVATE KEY-----\nAAA\n"
                                            "-----END PRIVATE KEY-----\n",
                                     "keyPassword": "key-pw"}}}}}]}])


def _security(entity):
    return entity["endpointGroups"][0]["endpoints"][0]["sharedConfigurationOverride"]["security"]


def test_management_responses_mask_secrets_and_a_put_round_trip_keeps_them(api, repo, caplog):
    caplog.set_level(logging.DEBUG)
    created = api.create_api(secure_definition())
    for entity in (created, api.call("GET", f"{B}/v4/apis/{created['id']}", 200),
                   api.call("GET", f"{B}/v4/apis", 200)[0]):
        text = json.dumps(entity)
        for secret in ("hunter2", "trust-pw", "key-pw", "BEGIN PRIVATE KEY"):
            assert secret not in text
        security = _security(entity)
        assert security["sasl"]["saslJaasConfig"] == \
            f'{PLAIN} required username="svc" password="****";'
        assert security["ssl"]["trustStore"]["password"] == "****"
        assert security["ssl"]["keyStore"]["key"] == "****"
        assert security["ssl"]["trustStore"]["location"] == "/etc/t.p12"  # not a secret

    # PUT back what GET returned, with one visible change: the secrets are kept.
    body = copy.deepcopy(created)
    body["description"] = "changed"
    updated = api.call("PUT", f"{B}/v4/apis/{created['id']}", 200, json=body)
    assert updated["description"] == "changed"
    stored = _security(repo.apis.get(created["id"])["definition"])
    assert stored == _security(secure_definition())
    assert "hunter2" not in caplog.text

    # A new password replaces the stored one; a username change with a masked password keeps
    # the stored password.
    body = copy.deepcopy(updated)
    _security(body)["sasl"]["saslJaasConfig"] = \
        f'{PLAIN} required username="svc2" password="****";'
    _security(body)["ssl"]["trustStore"]["password"] = "new-trust-pw"
    api.call("PUT", f"{B}/v4/apis/{created['id']}", 200, json=body)
    stored = _security(repo.apis.get(created["id"])["definition"])
    assert sec.parse_jaas(stored["sasl"]["saslJaasConfig"]).options == {
        "username": "svc2", "password": "hunter2"}
    assert stored["ssl"]["trustStore"]["password"] == "new-trust-pw"


def test_a_masked_secret_with_nothing_stored_is_a_400(api):
    body = secure_definition("/masked-create")
    _security_of_def = body["endpointGroups"][0]["endpoints"][0]["sharedConfigurationOverride"]
    _security_of_def["security"]["ssl"]["trustStore"]["password"] = "****"
    response = api.call("POST", f"{B}/v4/apis", 400, json=body)
    assert "ssl.trustStore.password" in json.dumps(response)
    assert "send the real value" in json.dumps(response)


def test_definition_error_bodies_never_echo_the_jaas_password(api):
    body = secure_definition("/bad-jaas")
    security = body["endpointGroups"][0]["endpoints"][0]["sharedConfigurationOverride"]["security"]
    security["sasl"]["saslJaasConfig"] = f'{PLAIN} required username="svc" password="hunter2"'
    response = api.call("POST", f"{B}/v4/apis", 400, json=body)
    text = json.dumps(response)
    assert "security.sasl.saslJaasConfig" in text and "must end with ';'" in text
    assert "hunter2" not in text


def test_java_truststore_made_by_keytool_style_serialisation_loads(tmp_path, pki):
    """A PKCS#12 trust store holding only certificates (no key), as keytool writes them."""
    from cryptography import x509
    ca = x509.load_pem_x509_certificate(pki.ca_pem.read_bytes())
    path = tmp_path / "plain.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        None, None, None, [ca], serialization.BestAvailableEncryption(b"pw")))
    conf = sec.librdkafka_security({"protocol": "SSL", "ssl": {"trustStore": {
        "type": "PKCS12", "location": str(path), "password": "pw"}}})
    assert conf["ssl.ca.pem"] == pki.ca_pem.read_text()

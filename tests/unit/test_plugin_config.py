"""Plugin configuration models: JSON schemas for the catalogue, secrets declared once on the
model (masked, kept on `****`, sealed) and validation problems at their JSON paths."""
from __future__ import annotations

from typing import Annotated, Optional

import pytest

from evgate import plugins
from evgate.definition import parse_definition
from evgate.definition.plugin_config import PluginConfiguration, Secret
from evgate.endpoints.base import Endpoint
from evgate.errors import DefinitionError
from evgate.security import secret_fields

TOKEN = "vault-token-5e3f1d"


class VaultConfiguration(PluginConfiguration):
    url: Optional[str] = None
    token: Annotated[Optional[str], Secret(sent_to=(("url",),))] = None


class VaultEndpoint(Endpoint):
    """A third-party endpoint: its secret is declared on its model, nowhere else."""
    type = "vault-test"
    configuration_model = VaultConfiguration


@pytest.fixture
def vault_plugin(monkeypatch):
    monkeypatch.setitem(plugins.BUILTINS["endpoints"], "vault-test",
                        f"{__name__}:VaultEndpoint")
    for cache in (plugins._table, plugins.load, secret_fields._plugin_secrets):
        cache.cache_clear()
    yield
    monkeypatch.undo()
    for cache in (plugins._table, plugins.load, secret_fields._plugin_secrets):
        cache.cache_clear()


def _vault_definition(url="https://vault.example", token=TOKEN):
    return {"endpointGroups": [{"type": "vault-test", "sharedConfiguration": {},
                                "endpoints": [{"type": "vault-test", "configuration": {
                                    "url": url, "token": token}}]}]}


@pytest.mark.parametrize("kind", plugins.KINDS)
def test_every_builtin_type_publishes_an_object_schema(kind):
    for type_ in plugins.known(kind):
        schema = plugins.schema(kind, type_)
        assert schema["type"] == "object", (kind, type_)
        assert schema.get("additionalProperties") is True  # Gravitee fields evgate ignores


def test_schemas_mark_secrets_write_only_and_required_fields():
    kafka = plugins.schema("endpoints", "kafka")
    jaas = kafka["$defs"]["KafkaSasl"]["properties"]["saslJaasConfig"]
    assert jaas["writeOnly"] is True and jaas["format"] == "password"
    key_store = kafka["$defs"]["KafkaKeyStore"]["properties"]
    assert key_store["content"]["writeOnly"] is True      # holds the private key
    assert "writeOnly" not in kafka["$defs"]["KafkaTrustStore"]["properties"]["content"]
    assert "writeOnly" not in kafka["properties"]["topics"]
    assert plugins.schema("policies", "message-filtering")["required"] == ["filter"]
    rate = plugins.schema("policies", "rate-limit")
    assert rate["required"] == ["rate"] and rate["$defs"]["Rate"]["required"] == ["limit"]
    subscription = plugins.subscription_schema("webhook")
    assert subscription["properties"]["secret"]["writeOnly"] is True
    assert plugins.subscription_schema("sse") is None
    with pytest.raises(KeyError):
        plugins.schema("endpoints", "no-such-type")


def test_a_secret_declared_on_a_plugin_model_is_masked_restored_and_sealed(vault_plugin):
    stored = _vault_definition()
    masked = secret_fields.mask(stored, secret_fields.api_definition)
    assert masked["endpointGroups"][0]["endpoints"][0]["configuration"]["token"] == "****"
    assert TOKEN not in repr(masked)
    restored, problems = secret_fields.restore(masked, stored, secret_fields.api_definition)
    assert problems == []
    assert restored["endpointGroups"][0]["endpoints"][0]["configuration"]["token"] == TOKEN

    class Keyring:
        def seal(self, value):
            return "sealed:" + value[::-1]
    sealed = secret_fields.seal(stored, secret_fields.api_definition, Keyring())
    assert sealed["endpointGroups"][0]["endpoints"][0]["configuration"]["token"] \
        == "sealed:" + TOKEN[::-1]
    assert sealed["endpointGroups"][0]["endpoints"][0]["configuration"]["url"] \
        == "https://vault.example"


def test_a_masked_secret_sent_to_a_new_destination_is_refused(vault_plugin):
    stored = _vault_definition()
    attack = secret_fields.mask(stored, secret_fields.api_definition)
    attack["endpointGroups"][0]["endpoints"][0]["configuration"]["url"] = "https://evil.example"
    restored, problems = secret_fields.restore(attack, stored, secret_fields.api_definition)
    assert problems == [{
        "path": "$.endpointGroups[0].endpoints[0].configuration.token",
        "message": "**** keeps the stored secret only while "
                   "endpointGroups[0].endpoints[0].configuration.url is unchanged: send the "
                   "secret again with the new endpointGroups[0].endpoints[0].configuration.url"}]
    assert TOKEN not in repr(restored)


def test_kafka_secrets_come_from_the_model():
    fields = {spec.path for spec in secret_fields._plugin_secrets("endpoints", "kafka")}
    assert ("security", "sasl", "saslJaasConfig") in fields
    assert ("security", "ssl", "keyStore", "content") in fields
    assert ("security", "ssl", "trustStore", "content") not in fields
    assert ("topics",) not in fields
    assert secret_fields._plugin_secrets("endpoints", "mock") == ()


@pytest.mark.parametrize("configuration, path, message", [
    ({"rate": {"limit": -1}}, ".rate.limit", "must be an integer >= 0"),
    ({"rate": "10/s"}, ".rate", "is required: {limit, periodTime, periodTimeUnit}"),
    ({"rate": {"limit": 1, "periodTimeUnit": "WEEKS"}}, ".rate.periodTimeUnit",
     "must be one of SECONDS, MINUTES, HOURS, DAYS"),
])
def test_policy_problems_keep_their_json_paths(configuration, path, message):
    definition = {
        "name": "t", "apiVersion": "1", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "http", "paths": [{"path": "/t"}],
                       "entrypoints": [{"type": "http-post"}]}],
        "endpointGroups": [{"name": "g", "type": "mock",
                            "endpoints": [{"name": "e", "type": "mock"}]}],
        "flows": [{"name": "f", "request": [{"policy": "rate-limit",
                                             "configuration": configuration}]}]}
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition)
    assert {"path": f"$.flows[0].request[0].configuration{path}", "message": message} \
        in caught.value.problems

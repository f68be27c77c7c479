"""The Kafka check service behind `evgate kafka check`: the API's own brokers and security,
the readiness probe's metadata request, errors as evgate errors (never librdkafka's)."""
from __future__ import annotations

import pytest

from evgate.config import Config
from evgate.errors import BackendUnavailableError, BadRequestError, ForbiddenError
from evgate.services.apis import ApiService
from evgate.services.kafka import KafkaService
from evgate.services.principal import LOCAL_OPERATOR, Principal

from .management_fixtures import api_definition


def _kafka_api(repo, servers: str, path: str = "/kafka-check") -> str:
    definition = api_definition(path=path, name=path.strip("/"))
    definition["endpointGroups"][0]["endpoints"][0]["configuration"]["bootstrapServers"] = servers
    return ApiService(repo, LOCAL_OPERATOR).create(definition)["id"]


def test_the_check_reaches_the_broker_of_the_environment(kafka_bootstrap):
    config = Config.from_env({"EVGATE_KAFKA_BOOTSTRAP": kafka_bootstrap})
    result = KafkaService(None, config, LOCAL_OPERATOR).check(timeout=10)
    assert result["bootstrap"] == kafka_bootstrap and result["brokers"]


def test_the_check_uses_the_apis_brokers_and_says_which_do_not_answer(repo):
    api_id = _kafka_api(repo, "127.0.0.1:1")
    with pytest.raises(BackendUnavailableError) as caught:
        KafkaService(repo, Config.from_env({}), LOCAL_OPERATOR).check(api_id=api_id, timeout=1)
    assert caught.value.status == 503
    assert caught.value.message.startswith("Kafka at 127.0.0.1:1 does not answer")


def test_an_api_without_a_kafka_endpoint_is_a_400(repo):
    definition = api_definition(path="/mock-check", name="mock-check")
    definition["endpointGroups"] = [{"name": "m", "type": "mock",
                                     "endpoints": [{"name": "m", "type": "mock"}]}]
    api_id = ApiService(repo, LOCAL_OPERATOR).create(definition)["id"]
    with pytest.raises(BadRequestError, match="has no kafka endpoint"):
        KafkaService(repo, Config.from_env({}), LOCAL_OPERATOR).check(api_id=api_id, timeout=1)


def test_only_an_admin_may_use_an_apis_kafka_credentials(repo):
    api_id = _kafka_api(repo, "127.0.0.1:1", path="/kafka-check-user")
    user = Principal("mallory", frozenset({"USER"}))
    with pytest.raises(ForbiddenError):
        KafkaService(repo, Config.from_env({}), user).check(api_id=api_id, timeout=1)

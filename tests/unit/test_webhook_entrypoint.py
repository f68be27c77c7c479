"""The webhook entrypoint type: registered, validated at deploy, serves no HTTP request."""
import pytest

from evgate import plugins
from evgate.definition import parse_definition
from evgate.errors import DefinitionError


def definition(entrypoint):
    return {"name": "wh", "type": "async",
            "listeners": [{"type": "subscription", "entrypoints": [entrypoint]}],
            "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
                {"name": "default", "type": "kafka", "configuration": {"topics": ["t"]}}]}]}


def test_registered_and_accepts_the_collection_shape():
    assert plugins.is_known("entrypoints", "webhook")
    parse_definition(definition({"type": "webhook"}))
    parse_definition(definition({"type": "webhook", "qos": "at-least-once",
                                 "configuration": {"http": {"connectTimeout": 3000,
                                                            "readTimeout": 10000,
                                                            "maxConcurrentConnections": 5}},
                                 "dlq": {"endpoint": "default"}}))


@pytest.mark.parametrize("entrypoint,path", [
    ({"type": "webhook", "configuration": {"http": "fast"}}, ".configuration.http"),
    ({"type": "webhook", "configuration": {"http": {"readTimeout": -1}}},
     ".configuration.http.readTimeout"),
    ({"type": "webhook", "configuration": {"http": {"maxConcurrentConnections": True}}},
     ".configuration.http.maxConcurrentConnections"),
    ({"type": "webhook", "dlq": {"topic": "x"}}, ".configuration.dlq"),
])
def test_bad_configuration_names_the_path(entrypoint, path):
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition(entrypoint))
    assert any(p["path"].endswith(path) for p in caught.value.problems), caught.value.problems

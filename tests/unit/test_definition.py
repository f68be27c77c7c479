import copy
import json
from pathlib import Path

import pytest

from evgate.definition import parse_definition
from evgate.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "Data Ingestion to Kafka",
    "apiVersion": "1.0",
    "definitionVersion": "4.0.0",
    "type": "async",
    "listeners": [{"type": "http", "paths": [{"path": "/data/ingestion/kafka"}],
                   "entrypoints": [{"type": "http-post",
                                    "configuration": {"requestHeadersToMessage": False}}]}],
    "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
        {"name": "default", "type": "kafka", "weight": 1, "inheritConfiguration": False,
         "configuration": {"bootstrapServers": "kafka:9092", "topics": ["demo"],
                           "consumer": {"enabled": False}, "producer": {"enabled": True}}}]}],
    "flows": [{"name": "", "selectors": [], "request": [], "response": [], "subscribe": [],
               "publish": [], "enabled": True}],
}


def problems(data):
    with pytest.raises(DefinitionError) as info:
        parse_definition(data)
    return {p["path"]: p["message"] for p in info.value.problems}


def test_the_postman_collection_ingestion_api_is_valid():
    api = parse_definition(BASE)
    assert api.type == "message"
    assert api.http_paths() == ["/data/ingestion/kafka"]
    assert api.entrypoints()[0].qos == "auto"


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "apis").glob("*.json")),
                         ids=lambda p: p.name)
def test_examples_are_valid(path):
    parse_definition(json.loads(path.read_text()))


@pytest.mark.parametrize("api_type,expected", [("async", "message"), ("MESSAGE", "message"),
                                                ("message", "message")])
def test_both_gravitee_spellings_of_type(api_type, expected):
    data = copy.deepcopy(BASE)
    data["type"] = api_type
    assert parse_definition(data).type == expected


def test_unknown_fields_are_kept_for_round_trips():
    data = copy.deepcopy(BASE)
    data["analytics"] = {"enabled": True}
    assert parse_definition(data).model_dump()["analytics"] == {"enabled": True}


def test_every_problem_is_listed_by_json_path():
    data = copy.deepcopy(BASE)
    data["listeners"][0]["entrypoints"][0]["type"] = "carrier-pigeon"
    data["listeners"][0]["paths"][0]["path"] = "no-slash"
    data["endpointGroups"][0]["endpoints"][0]["configuration"]["topics"] = "demo"
    del data["name"]
    found = problems(data)
    assert "$.name" in found
    assert "$.listeners[0].paths[0].path" in found
    assert "must start with '/'" in found["$.listeners[0].paths[0].path"]


def test_semantic_problems_are_all_listed():
    data = copy.deepcopy(BASE)
    data["listeners"][0]["entrypoints"][0]["type"] = "carrier-pigeon"
    data["endpointGroups"][0]["endpoints"][0]["configuration"]["topics"] = "demo"
    found = problems(data)
    assert "unknown entrypoint type 'carrier-pigeon'" in \
        found["$.listeners[0].entrypoints[0].type"]
    assert found["$.endpointGroups[0].endpoints[0].configuration.topics"] == \
        "must be a list of topic names"


@pytest.mark.parametrize("mutate,path", [
    (lambda d: d["endpointGroups"][0].update(type="mqtt9"), "$.endpointGroups[0].type"),
    (lambda d: d["listeners"][0].update(entrypoints=[]), "$.listeners[0].entrypoints"),
    (lambda d: d["listeners"][0].update(paths=[]), "$.listeners[0].paths"),
    (lambda d: d.update(endpointGroups=[]), "$.endpointGroups"),
    (lambda d: d.update(definitionVersion="2.0.0"), "$.definitionVersion"),
    (lambda d: d["listeners"][0]["entrypoints"][0].update(qos="twice"),
     "$.listeners[0].entrypoints[0].qos"),
    (lambda d: d["listeners"][0]["paths"].append({"path": "/data/ingestion/kafka/"}),
     "$.listeners[0].paths[1].path"),
    (lambda d: d["flows"][0]["publish"].append({"policy": "no-such-policy"}),
     "$.flows[0].publish[0].policy"),
    (lambda d: d["listeners"][0]["entrypoints"][0]["configuration"].update(
        requestHeadersToMessage="yes"),
     "$.listeners[0].entrypoints[0].configuration.requestHeadersToMessage"),
])
def test_rejections_name_the_path(mutate, path):
    data = copy.deepcopy(BASE)
    mutate(data)
    assert path in problems(data)


def test_not_an_object():
    assert problems([1, 2]) == {"$": "an API definition must be a JSON object"}


def test_endpoint_inherits_shared_configuration():
    from evgate.definition.validate import effective_configuration
    data = copy.deepcopy(BASE)
    group = data["endpointGroups"][0]
    group["sharedConfiguration"] = {"topics": ["shared"], "bootstrapServers": "b:1"}
    group["endpoints"][0]["inheritConfiguration"] = True
    group["endpoints"][0]["configuration"] = {"topics": ["own"]}
    api = parse_definition(data)
    merged = effective_configuration(api.endpointGroups[0], api.endpointGroups[0].endpoints[0])
    assert merged == {"topics": ["own"], "bootstrapServers": "b:1"}

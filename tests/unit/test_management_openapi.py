"""The OpenAPI document and Flask's url_map describe the same operations."""
from __future__ import annotations

import re

from .management_fixtures import client, fast_hashing, management  # noqa: F401


def _routed(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue  # the web console's HTML pages are not part of the REST API
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operations.add((method.lower(), path))
    return operations


def _documented(document) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_every_route_is_documented_and_every_documented_path_routed(management, client):
    document = client.get("/management/openapi.json").get_json()
    routed, documented = _routed(management), _documented(document)
    assert routed - documented == set(), "routes missing from openapi.json"
    assert documented - routed == set(), "documented but not routed"


def test_document_is_well_formed(client):
    document = client.get("/management/openapi.json").get_json()
    assert document["openapi"] == "3.0.3"
    schemas = document["components"]["schemas"]
    operation_ids = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and operation["responses"], (method, path)
            assert operation["operationId"] not in operation_ids
            operation_ids.add(operation["operationId"])
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(re.findall(r"{([^}]+)}", path)), (method, path)
            text = str(operation)
            for ref in re.findall(r"#/components/schemas/(\w+)", text):
                assert ref in schemas, ref

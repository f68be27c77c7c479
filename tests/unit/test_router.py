from types import SimpleNamespace

import pytest

from evgate.gateway.router import Router

A = SimpleNamespace(id="a", paths=["/data"])
B = SimpleNamespace(id="b", paths=["/data/ingestion"])
ROOT = SimpleNamespace(id="root", paths=["/"])


@pytest.mark.parametrize("path,api_id,relative", [
    ("/data", "a", "/"),
    ("/data/", "a", "/"),
    ("/data/other", "a", "/other"),
    ("/data/ingestion", "b", "/"),
    ("/data/ingestion/x/y", "b", "/x/y"),
    ("/data/ingestionx", "a", "/ingestionx"),
])
def test_longest_prefix_wins(path, api_id, relative):
    api, rel = Router([A, B]).match(path)
    assert (api.id, rel) == (api_id, relative)


def test_no_partial_segment_match():
    assert Router([B]).match("/data/ingestionx") is None
    assert Router([B]).match("/dat") is None


def test_root_listener_catches_the_rest():
    assert Router([B, ROOT]).match("/elsewhere")[0].id == "root"
    assert Router([B, ROOT]).match("/data/ingestion")[0].id == "b"

"""Listener path routing: the longest matching path prefix wins.

`/a/b` matches listener `/a/b` and `/a/b/anything`, never `/a/bc`. Paths are compared
without trailing slashes (definitions are normalised the same way).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .deployment import DeployedApi


class Router:
    def __init__(self, apis: Iterable["DeployedApi"]):
        routes = [(path, api) for api in apis for path in api.paths]
        # Longest first; ties are impossible (paths are unique across APIs).
        self._routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)

    def match(self, path: str) -> tuple["DeployedApi", str] | None:
        """(api, relative path) for the request path, or None."""
        for prefix, api in self._routes:
            if prefix == "/":
                return api, path or "/"
            if path == prefix or path.startswith(prefix + "/"):
                return api, path[len(prefix):] or "/"
            if path == prefix + "/":
                return api, "/"
        return None

    def __len__(self) -> int:
        return len(self._routes)

"""Per-snapshot lookup tables for plan handlers (API key -> key row, id -> subscription).

Built once per repository snapshot on first use, then shared by every request of the worker
until the next sync replaces the snapshot (keys and subscriptions change without an API
redeploy)."""
from __future__ import annotations

import weakref
from typing import Any

_INDEXES: "weakref.WeakKeyDictionary[Any, dict[str, dict[str, Any]]]" = \
    weakref.WeakKeyDictionary()


def _indexes(snapshot: Any) -> dict[str, dict[str, Any]]:
    built = _INDEXES.get(snapshot)
    if built is None:
        built = {
            "api_keys": {row["key_hash"]: row for row in getattr(snapshot, "api_keys", [])},
            "subscriptions": {row["id"]: row for row in getattr(snapshot, "subscriptions", [])},
        }
        _INDEXES[snapshot] = built
    return built


def api_key(snapshot: Any, key: str) -> dict[str, Any] | None:
    """The row of a presented key, matched by its SHA-256 (gateways hold no key in clear)."""
    from ..repository.api_keys import key_hash
    return None if snapshot is None else _indexes(snapshot)["api_keys"].get(key_hash(key))


def subscription(snapshot: Any, sub_id: str) -> dict[str, Any] | None:
    return None if snapshot is None else _indexes(snapshot)["subscriptions"].get(sub_id)


def subscriptions_of_plan(snapshot: Any, plan_id: str) -> list[dict[str, Any]]:
    if snapshot is None:
        return []
    return [s for s in _indexes(snapshot)["subscriptions"].values() if s["plan_id"] == plan_id]

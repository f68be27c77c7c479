"""Validation of a listener's `cors` block: what the pydantic model cannot see, by JSON path.

The runtime side (the compiled policy, preflight answers) is evgate/gateway/cors.py; the checks
live here, with the definition, so that validating a definition needs no engine.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..el.functions import InvalidArgument, compile_regex

if TYPE_CHECKING:
    from .model import Cors

#: an `allowOrigin` entry compared as text (not as a regular expression)
EXACT_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?|null", re.IGNORECASE)
#: an HTTP token (RFC 9110): header and method names
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def cors_problems(cors: "Cors", where: str) -> list[dict[str, str]]:
    """Problems of a listener's `cors` block that the model cannot see, by JSON path."""
    problems = []
    for index, entry in enumerate(cors.allowOrigin):
        path = f"{where}.allowOrigin[{index}]"
        if not entry.strip():
            problems.append({"path": path, "message": "must not be empty"})
        elif entry != "*" and not EXACT_ORIGIN.fullmatch(entry):
            try:
                compile_regex(entry)
            except InvalidArgument as exc:
                problems.append({"path": path, "message": f"{exc} (an origin that is not "
                                 "'*' or scheme://host[:port] is a regular expression)"})
    for field in ("allowHeaders", "allowMethods", "exposeHeaders"):
        for index, entry in enumerate(getattr(cors, field)):
            if not TOKEN.fullmatch(entry):
                problems.append({"path": f"{where}.{field}[{index}]",
                                 "message": "must be a header or method name (an HTTP token) "
                                            "or '*'"})
    return problems

"""Per-request execution context and the read-only views the expression language sees."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from flask import Request

    from .deployment import DeployedApi


class HeaderView(Mapping[str, list]):
    """Multi-valued, case-insensitive headers (`#request.headers['X-Name'][0]`)."""

    def __init__(self, items: list[tuple[str, str]]):
        self._data: dict[str, list[str]] = {}
        for name, value in items:
            self._data.setdefault(name.lower(), []).append(value)

    def __getitem__(self, name: str) -> list:
        return self._data[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(str(name).lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class RequestView:
    """What `#request` exposes: a whitelist, never the Flask object itself."""

    def __init__(self, request: "Request", transaction_id: str, path_params: Mapping[str, str]):
        self._request = request
        self.id = transaction_id
        self.headers = HeaderView(list(request.headers.items()))
        self.params = {k: request.args.getlist(k) for k in request.args}
        self.path_params = dict(path_params)

    def el_properties(self) -> Mapping[str, Any]:
        req = self._request
        return {
            "id": self.id, "transactionId": self.id, "path": req.path, "pathInfo": req.path,
            "method": req.method, "scheme": req.scheme, "host": req.host,
            "headers": self.headers, "params": self.params, "pathParams": self.path_params,
            "remoteAddress": req.remote_addr, "localAddress": req.environ.get("SERVER_NAME"),
            "uri": req.full_path.rstrip("?"), "contextPath": "",
        }


@dataclass
class ExecutionContext:
    """Everything a connector or policy needs to know about one client interaction."""

    api: "DeployedApi"
    request: "Request | None" = None
    transaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    plan: Any = None
    subscription: Any = None       # dict of the subscription when a plan needs one
    application_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    entrypoint_type: str | None = None
    _request_view: RequestView | None = None

    @property
    def request_view(self) -> RequestView | None:
        if self._request_view is None and self.request is not None:
            self._request_view = RequestView(self.request, self.transaction_id, {})
        return self._request_view

    def el_variables(self, message: Any = None) -> dict[str, Any]:
        """The variables of an expression evaluated in this context."""
        subscription = self.subscription or {}
        return {
            "request": self.request_view,
            "message": message,
            "subscription": {"id": subscription.get("id"), "type": subscription.get("type"),
                             "metadata": subscription.get("metadata") or {},
                             "applicationId": subscription.get("application_id")},
            "context": {"attributes": self.attributes},
            "api": {"id": self.api.id, "name": self.api.name,
                    "properties": self.api.properties},
        }

    def __repr__(self) -> str:
        return (f"<ExecutionContext api={self.api.id} tx={self.transaction_id} "
                f"entrypoint={self.entrypoint_type}>")

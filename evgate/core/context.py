"""Per-request execution context and the read-only views the expression language sees.

The context is typed against `ApiView` (what it reads of the deployed API), not the engine's
`DeployedApi`, so core/ does not import the gateway."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

#: the client's request: a werkzeug/Flask `Request` (or the raw-WSGI fast path's equivalent);
#: typed loosely so that core/ does not import Flask
Request = Any


class ApiView(Protocol):
    """What a context reads of the API it runs for (the gateway's DeployedApi is one)."""

    id: str
    name: str
    properties: Mapping[str, Any]


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


class ResponseView:
    """What `#response` exposes in the response phase: the status and the headers."""

    def __init__(self, response: Any):
        self._response = response

    def el_properties(self) -> Mapping[str, Any]:
        response = self._response
        return {"status": response.status_code,
                "headers": HeaderView(list(response.headers.items()))}


class MessageScope:
    """The expression variables and the `#jsonPath` cache of one message, built once and
    shared by every step the message goes through (fan-out makes per-step dicts costly)."""

    __slots__ = ("message", "variables", "cache")

    def __init__(self, message: Any, variables: dict[str, Any]):
        self.message = message
        self.variables = variables
        self.cache: dict = {}


@dataclass
class ExecutionContext:
    """Everything a connector or policy needs to know about one client interaction."""

    api: ApiView
    request: "Request | None" = None
    transaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    plan: Any = None
    subscription: Any = None       # dict of the subscription when a plan needs one
    application_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    entrypoint_type: str | None = None
    #: the response of the response phase (`#response`), set by run_response_phase
    response: Any = None
    #: headers request-phase policies want on the client's response (e.g. X-Rate-Limit-*)
    response_headers: dict[str, str] = field(default_factory=dict)
    _request_view: RequestView | None = None
    #: per-context memo of the flow chains (selected steps per phase, per-context filter
    #: values): conditions are evaluated once per request or subscription, not per message
    scratch: dict[Any, Any] = field(default_factory=dict, repr=False)
    _base_variables: dict[str, Any] | None = field(default=None, repr=False)
    _base_key: tuple = field(default=(), repr=False)
    _scope: MessageScope | None = field(default=None, repr=False)

    @property
    def request_view(self) -> RequestView | None:
        if self._request_view is None and self.request is not None:
            self._request_view = RequestView(self.request, self.transaction_id, {})
        return self._request_view

    def refresh_request_headers(self) -> None:
        """A request-phase policy changed the request headers: `#request.headers` re-reads."""
        view = self._request_view
        if view is not None and self.request is not None:
            view.headers = HeaderView(list(self.request.headers.items()))
            self._base_variables = None

    def _variables(self) -> dict[str, Any]:
        """The variables that do not depend on the message, built once per context (rebuilt
        only if the subscription, plan or response it shows changed since)."""
        key = (id(self.subscription), id(self.response), id(self._request_view))
        base = self._base_variables
        if base is None or key != self._base_key:
            subscription = self.subscription or {}
            base = {
                "request": self.request_view,
                "response": ResponseView(self.response) if self.response is not None else None,
                "message": None,
                "subscription": {"id": subscription.get("id"), "type": subscription.get("type"),
                                 "metadata": subscription.get("metadata") or {},
                                 "applicationId": subscription.get("application_id")},
                "context": {"attributes": self.attributes},
                "api": {"id": self.api.id, "name": self.api.name,
                        "properties": self.api.properties},
            }
            self._base_variables, self._base_key = base, (id(self.subscription),
                                                          id(self.response),
                                                          id(self._request_view))
        return base

    def el_variables(self, message: Any = None) -> dict[str, Any]:
        """The variables of an expression evaluated in this context (a fresh dict)."""
        variables = dict(self._variables())
        variables["message"] = message
        return variables

    def context_variables(self) -> dict[str, Any]:
        """The variables without a message (conditions and selectors); do not mutate."""
        return self._variables()

    def message_scope(self, message: Any) -> MessageScope:
        """The variables and jsonPath cache of `message`, shared by the steps it meets."""
        scope = self._scope
        if scope is None or scope.message is not message:
            scope = self._scope = MessageScope(message, self.el_variables(message))
        return scope

    def __repr__(self) -> str:
        return (f"<ExecutionContext api={self.api.id} tx={self.transaction_id} "
                f"entrypoint={self.entrypoint_type}>")

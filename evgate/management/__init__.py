"""The management REST API (port 8083): Gravitee 3.20 V4 paths, HTTP Basic auth.

`create_management_app(config, repository=...)` builds it (evgate/management/app.py); the
resources call the same services as the `evgate` CLI (evgate/services/)."""

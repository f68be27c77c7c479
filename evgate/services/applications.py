"""Applications: consumers that subscribe to plans (Gravitee's `settings.app.type`,
`settings.app.client_id` for JWT plans)."""
from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from ..definition.model import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from ..errors import BadRequestError, ConflictError, NotFoundError
from ..repository import Repository
from .principal import Principal
from ..repository.applications import client_id  # noqa: F401 - the services' name for it

logger = logging.getLogger(__name__)


class ApplicationService:
    """Acts as `caller`: a USER sees and changes only the applications it owns."""

    def __init__(self, repo: Repository, caller: Principal):
        self.repo = repo
        self.caller = caller

    def get(self, app_id: str) -> dict[str, Any]:
        return _entity(self.visible_row(app_id))

    def visible_row(self, app_id: str) -> dict[str, Any]:
        """The stored application, or 404 when it does not exist or the caller does not own it."""
        row = self.repo.applications.get(app_id)
        if not self.caller.owns(row["owner"]):
            raise NotFoundError("Application", app_id)
        return row

    def list(self) -> list[dict[str, Any]]:
        return [_entity(row) for row in self.repo.applications.list()
                if self.caller.owns(row["owner"])]

    def create(self, body: Any, owner: str | None = None) -> dict[str, Any]:
        """Owned by the caller; an ADMIN may name another `owner`."""
        data = _validated(body)
        if not (owner and self.caller.is_admin):
            owner = self.caller.username
        app_id = str(uuid.uuid4())
        self.repo.applications.insert(app_id, data, owner=owner)
        logger.info("created application %s (%s)", app_id, data["name"])
        return self.get(app_id)

    def update(self, app_id: str, body: Any) -> dict[str, Any]:
        self.visible_row(app_id)
        data = _validated(body)
        self.repo.applications.update(app_id, data)
        return self.get(app_id)

    def delete(self, app_id: str) -> None:
        self.visible_row(app_id)
        active = [s for s in self.repo.subscriptions.list(application_id=app_id)
                  if s["status"] not in ("CLOSED", "REJECTED")]
        if active:
            raise ConflictError(f"application {app_id} still has {len(active)} open "
                                "subscription(s); close them first",
                                key="application.subscriptions.open")
        self.repo.applications.delete(app_id)


def _validated(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestError("an application must be a JSON object", key="application.invalid")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequestError("$.name: an application needs a name",
                              key="application.name.missing")
    if len(name) > NAME_MAX_LENGTH:
        raise BadRequestError(f"$.name: at most {NAME_MAX_LENGTH} characters",
                              key="application.invalid")
    description = body.get("description")
    if description is not None and (not isinstance(description, str)
                                    or len(description) > DESCRIPTION_MAX_LENGTH):
        raise BadRequestError(f"$.description: must be a string of at most "
                              f"{DESCRIPTION_MAX_LENGTH} characters", key="application.invalid")
    settings = body.get("settings", {})
    if settings is not None and not isinstance(settings, dict):
        raise BadRequestError("$.settings: must be an object", key="application.invalid")
    data = {k: copy.deepcopy(v) for k, v in body.items()
            if k not in ("id", "createdAt", "updatedAt", "status", "owner")}
    data["settings"] = settings or {}
    return data


def _entity(row: dict[str, Any]) -> dict[str, Any]:
    entity = copy.deepcopy(row["definition"])
    entity.update(id=row["id"], name=row["name"], description=row["description"],
                  status=row["status"], owner=row["owner"],
                  createdAt=row["created_at"].isoformat(),
                  updatedAt=row["updated_at"].isoformat())
    entity.setdefault("settings", {})
    return entity

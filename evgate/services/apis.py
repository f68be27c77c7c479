"""APIs: create, update, deploy, start/stop, delete, import, with every rule checked here.

Rules: a definition is validated before anything is written (nothing half-written on a
rejected request); two APIs may not claim the same listener path; plans embedded in a
definition are stored as the API's plans; deploying copies the saved definition to the one
gateways run; an API runs on gateways while STARTED and deployed. Any caller reads the
catalogue (a USER sees only published or deprecated plans, without their security
configuration); only an ADMIN changes it (evgate/services/principal.py).
"""
from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from pydantic import ValidationError

from ..definition import parse_definition
from ..definition.model import ListenerPath
from ..definition.v4x import definition_from_export
from ..errors import BadRequestError, ConflictError, DefinitionError, DuplicateError, NotFoundError
from ..repository import Repository
from ..security import secret_fields
from .plans import masked, restored, validated_plan
from .principal import Principal, visible_plans

logger = logging.getLogger(__name__)

#: Fields of the API entity evgate computes; ignored in create/update bodies (the Postman
#: collection PUTs back a whole entity, timestamps as epoch millis included).
_READ_ONLY = ("state", "visibility", "deployedAt", "createdAt", "updatedAt", "primaryOwner",
              "lifecycleState", "disableMembershipNotifications", "groups")


class ApiService:
    def __init__(self, repo: Repository, caller: Principal):
        self.repo = repo
        self.caller = caller

    # -- reading -----------------------------------------------------------------------------
    def get(self, api_id: str) -> dict[str, Any]:
        return self._entity(self.repo.apis.get(api_id))

    def list(self) -> list[dict[str, Any]]:
        return [self._entity(row) for row in self.repo.apis.list()]

    def search(self, query: Any = None, *, ids: Any = None, types: Any = None,
               states: Any = None, tags: Any = None) -> list[dict[str, Any]]:
        """The mAPI v2 search: `query` matches name, description or id (case-insensitive);
        each list filter keeps APIs matching one of its values. 400 naming a bad filter."""
        def strings(value: Any, name: str, upper: bool = False) -> set[str] | None:
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BadRequestError(f"$.{name}: must be a list of strings",
                                      key="api.search.invalid")
            return {v.upper() if upper else v for v in value}
        if query is not None and not isinstance(query, str):
            raise BadRequestError("$.query: must be a string", key="api.search.invalid")
        wanted_ids, wanted_types = strings(ids, "ids"), strings(types, "apiTypes", True)
        wanted_states, wanted_tags = strings(states, "statuses", True), strings(tags, "tags")
        needle = (query or "").strip().lower()
        found = []
        for api in self.list():
            kind = {"async": "MESSAGE", "sync": "PROXY"}.get(
                str(api.get("type") or "message").lower(), str(api.get("type")).upper())
            if needle and not any(needle in str(api.get(f) or "").lower()
                                  for f in ("name", "description", "id")):
                continue
            if wanted_ids is not None and api["id"] not in wanted_ids:
                continue
            if wanted_types is not None and kind not in wanted_types:
                continue
            if wanted_states is not None and api["state"] not in wanted_states:
                continue
            if wanted_tags is not None and not wanted_tags & set(api.get("tags") or []):
                continue
            found.append(api)
        return found

    def current_deployment(self, api_id: str) -> dict[str, Any]:
        row = self.repo.apis.get(api_id)
        if row["deployed_definition"] is None:
            raise NotFoundError("Deployment", api_id)
        return {"apiId": api_id, "deploymentLabel": row.get("deployment_label"),
                "deployedAt": row["deployed_at"].isoformat() if row["deployed_at"] else None}

    # -- writing -----------------------------------------------------------------------------
    def create(self, definition: Any) -> dict[str, Any]:
        self.caller.require_admin("create APIs")
        parse_definition(definition, check_connectors=False)  # types first: masking walks them
        # A masked secret ("****") has nothing stored to keep on create: 400.
        data = self._validated(restore_masked(definition, None))
        api_id = data.get("id") or str(uuid.uuid4())
        if self.repo.apis.find(api_id) is not None:
            raise DuplicateError(f"an API with id {api_id} already exists", key="api.exists")
        data["id"] = api_id
        self._check_paths(data, api_id)
        plans = data.pop("plans", None) or []  # null: no plans, as the definition model reads it
        checked = [validated_plan(p, path=f"$.plans[{i}]") for i, p in enumerate(plans)]
        for key in _READ_ONLY:
            data.pop(key, None)
        with self.repo.write() as conn:  # the API and its plans, or nothing
            self.repo.apis.insert(api_id, data, conn=conn)
            for raw, plan in checked:
                self._insert_plan(api_id, raw, plan, conn)
        logger.info("created API %s (%s)", api_id, data.get("name"))
        return self.get(api_id)

    def update(self, api_id: str, definition: Any) -> dict[str, Any]:
        self.caller.require_admin("update APIs")
        stored = self.repo.apis.get(api_id)  # 404 first
        parse_definition(definition, check_connectors=False)  # types first: masking walks them
        # Responses mask Kafka secrets; "****" sent back keeps the stored secret
        # (docs/kafka-security.md, "Masking").
        data = self._validated(restore_masked(definition, stored["definition"]))
        data["id"] = api_id
        self._check_paths(data, api_id)
        data.pop("plans", None)  # plans are managed through their own resource
        for key in _READ_ONLY:
            data.pop(key, None)
        self.repo.apis.save_definition(api_id, data)
        return self.get(api_id)

    def deploy(self, api_id: str, label: str | None = None) -> dict[str, Any]:
        self.caller.require_admin("deploy APIs")
        row = self.repo.apis.get(api_id)
        self.repo.apis.deploy(api_id, row["definition"], label)
        logger.info("deployed API %s", api_id)
        return self.get(api_id)

    def start(self, api_id: str) -> None:
        self.caller.require_admin("start APIs")
        row = self.repo.apis.get(api_id)
        with self.repo.write() as conn:
            if row["deployed_definition"] is None:
                self.repo.apis.deploy(api_id, row["definition"], conn=conn)
            self.repo.apis.set_state(api_id, "STARTED", conn)
        logger.info("started API %s", api_id)

    def stop(self, api_id: str) -> None:
        self.caller.require_admin("stop APIs")
        self.repo.apis.get(api_id)
        self.repo.apis.set_state(api_id, "STOPPED")
        logger.info("stopped API %s", api_id)

    def delete(self, api_id: str) -> None:
        """Delete an API with its plans, subscriptions and keys (one transaction)."""
        self.caller.require_admin("delete APIs")
        self.repo.apis.get(api_id)
        with self.repo.write() as conn:
            self.repo.api_keys.delete_for_api(api_id, conn)
            self.repo.subscriptions.delete_for_api(api_id, conn)
            self.repo.plans.delete_for_api(api_id, conn)
            self.repo.apis.delete(api_id, conn)
        logger.info("deleted API %s", api_id)

    def import_definition(self, definition: Any) -> dict[str, Any]:
        """Create or replace (same id) an API with its plans, deploy and start it. Takes a
        definition or a mAPI v2 export (`{api, plans}`)."""
        self.caller.require_admin("import APIs")
        definition = definition_from_export(definition)
        if not isinstance(definition, dict):
            raise DefinitionError([{"path": "$", "message": "an API definition must be a JSON object"}])
        api_id = definition.get("id")
        if api_id and self.repo.apis.find(api_id) is not None:
            entity = self.update(api_id, definition)
            self._replace_embedded_plans(api_id, definition.get("plans") or [])
        else:
            entity = self.create(definition)
            api_id = entity["id"]
        self.deploy(api_id)
        self.start(api_id)
        return self.get(api_id)

    # -- helpers -----------------------------------------------------------------------------
    def _validated(self, definition: Any) -> dict[str, Any]:
        parse_definition(definition)
        return copy.deepcopy(definition)

    def _check_paths(self, data: dict[str, Any], api_id: str) -> None:
        clash = self._path_in_use(set(parse_definition(data).http_paths()), api_id)
        if clash:
            path, other = clash
            raise ConflictError(
                f"listener path {path!r} is already used by API {other['id']} "
                f"({other['name']})", key="api.listener.path.conflict")

    def _path_in_use(self, mine: set[str], api_id: Any) -> tuple[str, dict[str, Any]] | None:
        """(a path of `mine`, the other API using it), or None when no other API does."""
        for other in self.repo.apis.list():
            if other["id"] == api_id:
                continue
            try:
                theirs = set(parse_definition(other["definition"],
                                              check_connectors=False).http_paths())
            except DefinitionError:
                continue
            clash = mine & theirs
            if clash:
                return sorted(clash)[0], other
        return None

    def verify_paths(self, api_id: Any, paths: Any) -> dict[str, Any]:
        """mAPI v2 `_verify/paths`: {"ok": true} when the listener paths are well formed and
        no other API (than `api_id`, the one being edited) listens on them, else
        {"ok": false, "reason"}. A body of the wrong shape is a 400 naming the place."""
        self.caller.require_admin("create or update APIs")
        if api_id is not None and not isinstance(api_id, str):
            raise BadRequestError("$.apiId: must be a string", key="api.paths.invalid")
        if not isinstance(paths, list) or not paths:
            raise BadRequestError("$.paths: is required (a non-empty list of {\"path\"})",
                                  key="api.paths.invalid")
        normalized: list[str] = []
        for index, item in enumerate(paths):
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise BadRequestError(f"$.paths[{index}].path: is required (a string)",
                                      key="api.paths.invalid")
            try:
                path = ListenerPath.model_validate(item).path
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
                return {"ok": False, "reason": f"Path [{item['path']}] is invalid: {problem}"}
            if path in normalized:
                return {"ok": False, "reason": f"Path [{path}] is duplicated"}
            normalized.append(path)
        clash = self._path_in_use(set(normalized), api_id)
        if clash:
            return {"ok": False, "reason": f"Path [{clash[0]}] already exists"}
        return {"ok": True}

    def _insert_plan(self, api_id: str, raw: dict[str, Any], plan: Any, conn: Any = None) -> None:
        stored = copy.deepcopy(raw)
        stored.update(id=raw.get("id") or str(uuid.uuid4()), apiId=api_id,
                      status=plan.status, validation=plan.validation,
                      security={"type": plan.security.type,
                                "configuration": plan.security.configuration})
        self.repo.plans.insert(stored, conn)

    def _replace_embedded_plans(self, api_id: str, plans: list[dict[str, Any]]) -> None:
        existing = {p["id"]: p for p in self.repo.plans.list_for_api(api_id)}
        # "****" keeps the stored secret of the same plan
        plans = [restored(p, existing.get(p.get("id")) if isinstance(p, dict)
                          and isinstance(p.get("id"), str) else None, path=f"$.plans[{i}]")
                 for i, p in enumerate(plans)]
        parsed = [validated_plan(p, path=f"$.plans[{i}]")[1] for i, p in enumerate(plans)]
        for raw, plan in zip(plans, parsed):
            if raw.get("id") in existing:
                stored = copy.deepcopy(raw)
                stored.update(apiId=api_id, status=plan.status, validation=plan.validation,
                              security={"type": plan.security.type,
                                        "configuration": plan.security.configuration})
                self.repo.plans.update(stored)
            else:
                self._insert_plan(api_id, raw, plan)

    def _entity(self, row: dict[str, Any]) -> dict[str, Any]:
        # a deep copy, endpoint secrets (Kafka's) as ****
        entity = secret_fields.mask(row["definition"], secret_fields.api_definition)
        entity.update(
            id=row["id"], state=row["state"],
            deployedAt=row["deployed_at"].isoformat() if row["deployed_at"] else None,
            createdAt=row["created_at"].isoformat(), updatedAt=row["updated_at"].isoformat(),
            plans=[masked(p) for p in visible_plans(self.caller,
                                                    self.repo.plans.list_for_api(row["id"]))])
        return entity



def restore_masked(definition: Any, stored: Any) -> Any:
    """A copy of `definition` where each **** (and JAAS password="****") takes the value
    stored at the same place; DefinitionError (400) where nothing is stored to keep."""
    if not isinstance(definition, dict):
        return definition
    restored_definition, problems = secret_fields.restore(definition, stored,
                                                          secret_fields.api_definition)
    if problems:
        raise DefinitionError(problems)
    return restored_definition

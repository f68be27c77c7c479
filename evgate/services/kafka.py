"""Kafka connectivity as an operator sees it (`evgate kafka check`): can this host reach the
cluster, with the brokers and security settings of the environment or of one API's endpoint?

One metadata request through the readiness probe's own function
(evgate/observability/health.py), with the connection settings built exactly as the gateway's
clients build them, so a check that passes here means the gateway's clients can connect.
"""
from __future__ import annotations

import logging
from typing import Any

from ..config import Config
from ..definition import parse_definition
from ..definition.validate import effective_configuration
from ..errors import BackendUnavailableError, BadRequestError
from ..observability import health
from ..repository import Repository
from .principal import Principal

logger = logging.getLogger(__name__)

KAFKA_TYPES = ("kafka", "kafka-advanced")


class KafkaService:
    def __init__(self, repo: Repository | None, config: Config, caller: Principal):
        self.repo = repo
        self.config = config
        self.caller = caller

    def check(self, *, bootstrap: str | None = None, api_id: str | None = None,
              timeout: float = 5.0) -> dict[str, Any]:
        """{"bootstrap", "brokers", "topics", "clusterId"} of the cluster that answered;
        BackendUnavailableError (503) naming the servers when none answers."""
        endpoint_conf: dict[str, Any] = {}
        if api_id:
            # the API's brokers and credentials are used, never shown
            self.caller.require_admin("check an API's Kafka connection")
            endpoint_conf = self._endpoint_configuration(api_id)
        if bootstrap:
            endpoint_conf = {**endpoint_conf, "bootstrapServers": bootstrap}
        conf = health.connection_config(endpoint_conf, self.config)  # security included
        if bootstrap:
            conf["bootstrap.servers"] = bootstrap
        servers = conf["bootstrap.servers"]
        try:
            metadata = health.cluster_metadata(conf, timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means "does not answer"
            raise BackendUnavailableError(f"Kafka at {servers} does not answer: "
                                          f"{health.failure_text(exc)}") from None
        brokers = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
        return {"bootstrap": servers, "brokers": brokers, "topics": len(metadata.topics),
                "clusterId": metadata.cluster_id}

    def _endpoint_configuration(self, api_id: str) -> dict[str, Any]:
        """The effective configuration of the API's first kafka endpoint (deployed, else
        saved)."""
        row = self.repo.apis.get(api_id)
        raw = row.get("deployed_definition") or row["definition"]
        for group in parse_definition(raw, check_connectors=False).endpointGroups:
            for endpoint in group.endpoints:
                if endpoint.type in KAFKA_TYPES:
                    return effective_configuration(group, endpoint)
        raise BadRequestError(f"API {api_id} has no kafka endpoint", key="api.no_kafka_endpoint")

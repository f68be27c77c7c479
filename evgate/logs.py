"""Logging setup: plain or JSON lines on stderr, level from settings.

Call `configure(config)` once per process (CLI, gunicorn master, each worker). Secrets never
reach a log through evgate's own messages (connector reprs and client configs are masked).
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from .config import Config


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for attribute in ("api_id", "entrypoint", "transaction_id"):
            value = getattr(record, attribute, None)
            if value is not None:
                entry[attribute] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if config.log_format == "json"
                         else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(config.log_level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)

"""The WSGI applications gunicorn serves, built once per worker process."""
from __future__ import annotations

import logging
import os
import time
from functools import lru_cache
from typing import Any

from .config import Config
from .logs import configure

logger = logging.getLogger(__name__)


def _migrate_with_retry(url: str, secrets_key: Any = None, attempts: int = 10) -> None:
    """Several workers may start at once on one SQLite file: the loser of the race retries."""
    from .repository.database import upgrade
    for attempt in range(attempts):
        try:
            upgrade(url, secrets_key)
            return
        except Exception:  # noqa: BLE001
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + 0.1 * attempt)


@lru_cache(maxsize=None)
def _config() -> Config:
    config = Config.from_env()
    configure(config)
    return config


@lru_cache(maxsize=None)
def gateway_app():
    from .app import create_app
    from .repository import Repository
    config = _config()
    _migrate_with_retry(config.database_url, config.secrets_key)
    logger.info("gateway worker %d starting", os.getpid())
    return create_app(config, repository=Repository(config.database_url, config.secrets_key))


@lru_cache(maxsize=None)
def management_app():
    from .management.app import create_management_app
    from .repository import Repository
    config = _config()
    _migrate_with_retry(config.database_url, config.secrets_key)
    return create_management_app(config, repository=Repository(config.database_url,
                                                               config.secrets_key))

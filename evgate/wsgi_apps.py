"""The WSGI applications gunicorn serves, built once per worker process.

The schema is migrated once, by the gunicorn master before it forks (evgate/gunicorn_settings.py
`on_starting`), not by each worker: workers open the repository as it is.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache

from .config import Config
from .logs import configure

logger = logging.getLogger(__name__)


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
    logger.info("gateway worker %d starting", os.getpid())
    return create_app(config, repository=Repository(config.database_url, config.secrets_key))


@lru_cache(maxsize=None)
def management_app():
    from .management.app import create_management_app
    from .repository import Repository
    config = _config()
    return create_management_app(config, repository=Repository(config.database_url,
                                                               config.secrets_key))

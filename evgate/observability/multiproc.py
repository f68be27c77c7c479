"""The gunicorn master's side of prometheus_client's multiprocess mode.

Kept apart from metrics.py on purpose: prometheus_client picks its value class when
`prometheus_client.values` is first imported, so the master must set `PROMETHEUS_MULTIPROC_DIR`
before anything imports it, or the forked workers would inherit single-process counters.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from typing import Any, MutableMapping

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(environ: MutableMapping[str, str] | None = None
                             ) -> tuple[str, bool]:
    """Make `PROMETHEUS_MULTIPROC_DIR` an empty directory (a new temporary one unless set);
    returns (path, created_here). Files of a previous run would be summed with ours."""
    environ = os.environ if environ is None else environ
    path = environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
        return path, False
    path = tempfile.mkdtemp(prefix="evgate-metrics-")
    environ[MULTIPROC_ENV] = path
    return path, True


def mark_process_dead(pid: int) -> None:
    """A worker ended: drop its live gauges (open connections, lag); its counters stay."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    from prometheus_client import multiprocess
    try:
        multiprocess.mark_process_dead(pid)
    except OSError:
        logger.debug("mark_process_dead(%s) failed", pid, exc_info=True)


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def is_multiprocess(environ: Any = None) -> bool:
    return bool((os.environ if environ is None else environ).get(MULTIPROC_ENV))

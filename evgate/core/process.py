"""The current process id, without a system call per ask.

`os.getpid()` is a system call (glibc stopped caching it): ~0.25 us, and the per-request path
asked for it to notice a fork (gunicorn forks its workers from the master, whose clients and
flush greenlets are not the worker's). The id is read once and again in every forked child.
"""
from __future__ import annotations

import os

_pid = os.getpid()


def current_pid() -> int:
    """`os.getpid()`, kept up to date across `os.fork()`."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)

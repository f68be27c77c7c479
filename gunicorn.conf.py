"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app` (gunicorn also reads this file by
itself when started from the project root). The settings live in evgate/gunicorn_settings.py,
so an installed evgate (`evgate serve`) uses the very same ones."""
from evgate.gunicorn_settings import *  # noqa: F401,F403
from evgate.gunicorn_settings import (child_exit, on_exit, on_starting,  # noqa: F401
                                      post_worker_init, pre_fork, worker_exit)

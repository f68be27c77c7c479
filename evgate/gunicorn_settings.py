"""gunicorn settings for evgate (gateway and management), from evgate's own settings (evgate/config.py).

    gunicorn -c python:evgate.gunicorn_settings "evgate.wsgi_apps:gateway_app()"

The top-level gunicorn.conf.py re-exports these, so `gunicorn -c gunicorn.conf.py wsgi:app`
(and a plain `gunicorn -k gevent wsgi:app` run from the project root) use them too.

Production defaults: gevent workers (gevent_pywsgi measured ~1.5x `gevent` here), one per
core, many connections per worker (SSE/WebSocket clients are long-lived), a heartbeat timeout
that long streams do not trip, no preload (Kafka clients must be created after the fork).
"""
import multiprocessing

from .config import Config

_config = Config.from_env()

bind = [_config.gateway_bind]
workers = _config.workers or multiprocessing.cpu_count()
worker_class = _config.worker_class
worker_connections = _config.worker_connections
timeout = _config.timeout
graceful_timeout = _config.graceful_timeout
keepalive = 75
preload_app = False
control_socket_disable = True   # else gunicorn 27 writes ~/.gunicorn/gunicorn.ctl
accesslog = None
errorlog = "-"
loglevel = _config.log_level


def on_starting(server):
    """Master: create or migrate the repository schema once, before workers start."""
    from .logs import configure
    from .repository.database import upgrade
    configure(_config)
    upgrade(_config.database_url)


def worker_exit(server, worker):
    """Worker: drain the runtime (flush producers) before the process ends."""
    from .wsgi_apps import gateway_app
    if gateway_app.cache_info().currsize:
        runtime = gateway_app().extensions["evgate.runtime"]
        runtime.stop(timeout=max(1, _config.graceful_timeout - 5))

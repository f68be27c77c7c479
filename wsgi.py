"""WSGI entry point of the gateway: `gunicorn -c gunicorn.conf.py wsgi:app`
(or the design's plain `gunicorn -k gevent wsgi:app`).

gunicorn imports this module in each worker after the fork (evgate never uses --preload), so
the Kafka clients and the repository sync the app starts belong to that worker. The
management API has its own entry point: `wsgi:management_app` (port 8083).
"""
from evgate.wsgi_apps import gateway_app, management_app


def __getattr__(name):
    # Build lazily: importing wsgi (e.g. by tooling) has no side effects until `app` is used.
    if name == "app":
        return gateway_app()
    if name == "management":
        return management_app()
    raise AttributeError(name)

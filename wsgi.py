"""WSGI entry point of the gateway: `gunicorn -c gunicorn.conf.py wsgi:app`
(or the design's plain `gunicorn -k gevent wsgi:app`).

gunicorn imports this module in each worker after the fork (evgate never uses --preload), so
the Kafka clients and the repository sync the app starts belong to that worker. The
management API has its own entry point: `wsgi:management` (port 8083).
"""
from evgate.wsgi_apps import gateway_app, management_app


def __getattr__(name):
    # Build lazily: importing wsgi (e.g. by tooling) has no side effects until `app` is used.
    factories = {"app": gateway_app, "management": management_app}
    if name not in factories:
        raise AttributeError(name)
    try:
        return factories[name]()
    except AttributeError as exc:
        # An AttributeError escaping a module __getattr__ would read as "no attribute 'app'"
        # and hide the real failure from the operator.
        raise RuntimeError(f"building wsgi:{name} failed: {exc!r}") from exc

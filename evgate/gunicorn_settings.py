"""gunicorn settings for evgate (gateway and management), from evgate's own settings (evgate/config.py).

    gunicorn -c python:evgate.gunicorn_settings "evgate.wsgi_apps:gateway_app()"

The top-level gunicorn.conf.py re-exports these, so `gunicorn -c gunicorn.conf.py wsgi:app`
(and a plain `gunicorn -k gevent wsgi:app` run from the project root) use them too.

Production defaults: gevent workers (gevent_pywsgi measured ~1.5x `gevent` here), one per
core, many connections per worker (SSE/WebSocket clients are long-lived), a heartbeat timeout
that long streams do not trip, no preload (Kafka clients must be created after the fork).
The worker classes are evgate's subclasses (evgate/workers.py): strict HTTP/1.1 framing and a
request-head timeout (EVGATE_HEADER_TIMEOUT), also when `-k` names gunicorn's own.

Hooks (docs/deployment.md, docs/observability.md):
- `on_starting` (master): logging, repository schema (the one migration of a server: workers
  do not migrate), a fresh PROMETHEUS_MULTIPROC_DIR, and for
  the gateway app the node port (EVGATE_NODE_BIND) added to the listeners, so every worker
  accepts on both the gateway and the node address (`--bind` on the command line replaces
  `bind`, the node address is still added); the shared windows of rate limits and
  failed logins (evgate/core/shared_windows.py) and the accept balance's table
  (evgate/accept_balance.py) that the workers inherit.
- `pre_fork` (master): the new worker's slot in the accept balance.
- `post_worker_init` (worker): create the producers of the deployed APIs before the first
  request, and chain the worker's SIGTERM handler with the drain (runtime.drain in a greenlet).
- `worker_exit` (worker): runtime.stop() - consumers closed, producers flushed; logging's
  module lock made native again (logs.release_gevent_lock: no gevent at interpreter exit).
- `child_exit` (master): the dead worker's live gauges are dropped, its slot freed.
- `on_exit` (master): the metrics directory is removed if evgate created it.

Drain timeline on SIGTERM (budget = graceful_timeout, 30 s by default): the master closes its
listeners and signals the workers; in each worker gunicorn marks itself not alive and within a
second closes its listening sockets, while evgate's drain refuses new requests on connections
already open (503 + Connection: close), stops webhook deliveries (commits), sends goaway to
streams, waits up to DRAIN_SHARE of the budget for in-flight requests, then closes idle
keep-alive connections; gunicorn sees no connection left and ends the worker; `worker_exit`
flushes the producers within FLUSH_SHARE of the budget.
"""
import logging
import multiprocessing

from .config import Config

_config = Config.from_env()

from .logs import mask_gunicorn_logs  # noqa: E402
mask_gunicorn_logs()   # before gunicorn logs its configuration (with raw_env) at debug

bind = [_config.gateway_bind]
workers = _config.workers or multiprocessing.cpu_count()
#: evgate's subclasses of gunicorn's gevent workers: strict HTTP framing, head timeout
WORKER_CLASSES = {"gevent_pywsgi": "evgate.workers.StrictPyWSGIWorker",
                  "gevent": "evgate.workers.StrictGeventWorker"}
worker_class = WORKER_CLASSES[_config.worker_class]
worker_connections = _config.worker_connections
timeout = _config.timeout
graceful_timeout = _config.graceful_timeout
keepalive = 75
preload_app = False
control_socket_disable = True   # else gunicorn 27 writes ~/.gunicorn/gunicorn.ctl
accesslog = None                # evgate writes its own access log (logger evgate.access)
errorlog = "-"
loglevel = _config.log_level

DRAIN_SHARE = 0.6
FLUSH_SHARE = 0.25

_metrics_dir = {"path": None, "created": False}


def _is_gateway(server) -> bool:
    """The node port belongs to the gateway app, not to the management API's server."""
    uri = str(getattr(server.app, "app_uri", None) or server.cfg.wsgi_app or "")
    return "management" not in uri


def _check_secrets_key() -> None:
    """Refuse to start, with one clear line, when stored secrets could not be sealed."""
    from .errors import ConfigError
    from .security.sealing import keyring_for
    try:
        keyring_for(_config.database_url, _config.secrets_key)
    except ConfigError as exc:
        logging.getLogger("evgate.gunicorn").error("cannot start: %s", exc)
        raise SystemExit(1) from None


def on_starting(server):
    """Master: logging, schema, metrics directory, node listener; before workers exist."""
    from .logs import configure
    from .observability.multiproc import prepare_multiprocess_dir
    from .repository.database import upgrade
    configure(_config)
    _strict_worker_class(server)
    _check_secrets_key()
    upgrade(_config.database_url, _config.secrets_key)
    path, created = prepare_multiprocess_dir()
    _metrics_dir.update(path=path, created=created)
    # before the fork: every worker maps the same windows (rate limits, login failures)
    from .core.shared_windows import create_node_table
    create_node_table()
    from .accept_balance import create_table   # new connections spread over the workers
    create_table()
    if _is_gateway(server) and _config.node_bind:
        addresses = list(server.cfg.bind)
        if _config.node_bind not in addresses:
            server.cfg.set("bind", addresses + [_config.node_bind])
        logging.getLogger("evgate.gunicorn").info(
            "node endpoints (/_node/health, /_node/metrics) on %s", _config.node_bind)


def _strict_worker_class(server) -> None:
    """`-k gevent` / `-k gevent_pywsgi` on the command line replaces `worker_class`: serve
    with evgate's strict subclass of that class all the same (docs/deployment.md)."""
    from gunicorn.util import load_class
    chosen = server.cfg.worker_class_str
    aliases = {"gevent_wsgi": "gevent_pywsgi",
               "gunicorn.workers.ggevent.GeventPyWSGIWorker": "gevent_pywsgi",
               "gunicorn.workers.ggevent.GeventWorker": "gevent"}
    name = aliases.get(chosen, chosen)
    if name in WORKER_CLASSES:
        server.cfg.set("worker_class", WORKER_CLASSES[name])
        server.worker_class = load_class(WORKER_CLASSES[name])
    elif chosen not in WORKER_CLASSES.values():
        logging.getLogger("evgate.gunicorn").warning(
            "worker class %s is not one evgate supports (gevent_pywsgi, gevent): HTTP framing "
            "is not checked by evgate", chosen)


def post_worker_init(worker):
    """Worker, app loaded, before serving: warm the Kafka producers and wire the drain."""
    runtime = _gateway_runtime()
    if runtime is None:
        return
    _warm_producers(runtime)
    from .app import drain_on_sigterm
    drain_on_sigterm(runtime, DRAIN_SHARE * _config.graceful_timeout)


def worker_exit(server, worker):
    """Worker: close the consumers and flush the producers before the process ends."""
    runtime = _gateway_runtime()
    if runtime is not None:
        # streams served without a server greenlet (evgate/entrypoints/detached.py) do not
        # hold gunicorn's pool: their last frames (goaway) still get their time
        runtime.connections.wait_quiet(FLUSH_SHARE * _config.graceful_timeout)
        runtime.stop(timeout=max(1.0, FLUSH_SHARE * _config.graceful_timeout))
        try:
            from .observability import metrics
            metrics.flush()
        except Exception:  # noqa: BLE001
            pass
    from .logs import flush_handlers, release_gevent_lock
    flush_handlers()       # the batched access lines (evgate/logs.py)
    release_gevent_lock()   # else "Exception ignored in _removeHandlerRef" at interpreter exit


def pre_fork(server, worker):
    """Master, before each worker's fork: its slot in the accept balance."""
    from .accept_balance import assign_slot
    assign_slot(server, worker)


def child_exit(server, worker):
    """Master: a worker ended; drop its live gauges and free its accept-balance slot."""
    from .accept_balance import release_slot
    from .observability.multiproc import mark_process_dead
    release_slot(worker)
    mark_process_dead(worker.pid)


def on_exit(server):
    """Master: remove the metrics directory evgate created."""
    from .observability.multiproc import remove_multiprocess_dir
    if _metrics_dir["created"] and _metrics_dir["path"]:
        remove_multiprocess_dir(_metrics_dir["path"])


def _gateway_runtime():
    from .wsgi_apps import gateway_app
    if not gateway_app.cache_info().currsize:
        return None  # the management app, or the app never loaded
    return gateway_app().extensions["evgate.runtime"]


def _warm_producers(runtime) -> None:
    """One producer per deployed kafka endpoint configuration, created now rather than on the
    first request (librdkafka connects in the background meanwhile)."""
    from .kafka.client_config import producer_config
    for api in list(runtime.apis.values()):
        endpoint = getattr(api, "endpoint", None)
        if endpoint is None or endpoint.type != "kafka" or not endpoint.can_publish:
            continue
        try:
            runtime.producers.get(producer_config(endpoint.configuration, runtime.config))
        except Exception:  # noqa: BLE001 - the first request reports it properly
            logging.getLogger("evgate.gunicorn").warning(
                "could not create the producer of API %s", api.id, exc_info=True)

# evgate gateway image: `docker build -t evgate .` then see docs/docker.md (or docker-compose.yml).
# The same image serves the gateway (default command), the management API
# (`evgate serve management`) and the CLI (`evgate apis import ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies and the package first (no dev extras). librdkafka comes inside the
# confluent-kafka wheel, gevent/psycopg/cryptography as wheels too: no apt packages needed.
COPY setup.py README.md ./
COPY evgate ./evgate
RUN pip install . \
    && groupadd --system --gid 10001 evgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin evgate \
    && mkdir /data && chown 10001:10001 /data

# gunicorn.conf.py and wsgi.py are read from the working directory; examples/ feeds
# `evgate apis import` (docker-compose.yml's one-shot import service).
COPY gunicorn.conf.py wsgi.py ./
COPY examples ./examples

USER 10001:10001

# The SQLite repository lives on the /data volume, shared by gateway and management
# containers on one host; use EVGATE_DATABASE_URL=postgresql+psycopg://... for many nodes.
ENV EVGATE_GATEWAY_BIND=0.0.0.0:8082 \
    EVGATE_MANAGEMENT_BIND=0.0.0.0:8083 \
    EVGATE_DATABASE_URL=sqlite:////data/evgate.db
VOLUME ["/data"]
# 18082: the node endpoints (/_node/health, /_node/metrics; docs/observability.md). Bound to
# 127.0.0.1 inside the container unless EVGATE_NODE_BIND=0.0.0.0:18082 (for a scraper or a
# load balancer's readiness probe from outside; keep that port off public networks).
EXPOSE 8082 8083 18082

# Liveness of the gateway worker on the node port (readiness, which also checks Kafka and the
# repository, is for load balancers: /_node/health/readiness).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:18082/_node/health/liveness', timeout=3)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]

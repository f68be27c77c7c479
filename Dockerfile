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
EXPOSE 8082 8083

# Alive = the gateway answers HTTP at all (GET / is the JSON 404 of an unknown path; an
# HTTPError is an answer, a refused connection is not). A dedicated health endpoint on a
# node port (18082) is planned; switch this check to it when it lands.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r, urllib.error as e\ntry: r.urlopen('http://127.0.0.1:8082/', timeout=3)\nexcept e.HTTPError: pass"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]

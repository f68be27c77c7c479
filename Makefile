# evgate: `make run` serves a local gateway (8082) + management API (8083) with the examples;
# `make test` installs what the tests need, starts Kafka, and runs the whole suite.
# Everything installs into .venv; system packages (CI runs as root) through scripts/test-deps.sh.

PYTHON_BOOTSTRAP ?= python3
VENV            ?= .venv
PY              := $(VENV)/bin/python
EVGATE          := $(VENV)/bin/evgate
KAFKA_PORT      ?= 9092
PYTEST_ARGS     ?=

.PHONY: install run test lint-imports test-deps kafka kafka-stop kafka-status docs bench clean help

help:
	@echo "make run         install, start local Kafka (unless EVGATE_KAFKA_BOOTSTRAP), load examples, serve 8082+8083"
	@echo "make test        install, start what the tests need, check the import layers, run the whole suite"
	@echo "make kafka       start the local Apache Kafka on 127.0.0.1:$(KAFKA_PORT) (kafka-stop, kafka-status)"
	@echo "make docs        regenerate docs/configuration.md from evgate/config.py"
	@echo "make bench       run the benchmarks (bench/: ingest, webhook, fanout, poll; needs wrk and node)"

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

kafka: install
	KAFKA_PORT=$(KAFKA_PORT) PYTHON=$(PY) scripts/kafka.sh start

kafka-stop:
	KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh stop

kafka-status:
	KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh status

# Local development only: admin/admin (the Postman environment's), loopback webhook targets.
run: install
	@if [ -z "$$EVGATE_KAFKA_BOOTSTRAP" ]; then \
		KAFKA_PORT=$(KAFKA_PORT) PYTHON=$(PY) scripts/kafka.sh start; \
	else echo "using Kafka at $$EVGATE_KAFKA_BOOTSTRAP"; fi
	$(EVGATE) db upgrade
	$(EVGATE) apis import examples/apis/*.json
	EVGATE_ADMIN_PASSWORD=$${EVGATE_ADMIN_PASSWORD:-admin} \
	EVGATE_WEBHOOK_ALLOW_PRIVATE=$${EVGATE_WEBHOOK_ALLOW_PRIVATE:-loopback} \
		$(EVGATE) serve both

# The layer contracts of docs/architecture.md (.importlinter); `make test` runs them first.
lint-imports: install
	$(VENV)/bin/lint-imports

test-deps: install
	scripts/test-deps.sh

test: test-deps
	@if [ -z "$$EVGATE_TEST_KAFKA_BOOTSTRAP" ]; then \
		KAFKA_PORT=$(KAFKA_PORT) PYTHON=$(PY) scripts/kafka.sh start; fi
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

docs: install
	$(EVGATE) config docs > docs/configuration.md

bench: install
	$(PY) -m bench.ingest
	$(PY) -m bench.webhook
	$(PY) bench/fanout.py
	$(PY) -m bench.poll

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

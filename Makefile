# canopywatch: the two commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install demo test test-fast lint platform-up platform-down platform-status login lock bench train test-cluster test-faults

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install:  ## install everything (apt, Python venv, Kafka jars, MinIO), skipping what is there
	@bash scripts/bootstrap.sh all

demo: install  ## bring the platform up and run deforestation_monitor over the demo area
	@$(PY) -m canopywatch_dev.demo

# the cluster profile's end-to-end test: a pytest run of its own (marker `cluster`), in file
# order; pytest-randomly stays loaded so that a PYTEST_ADDOPTS=--randomly-seed=N still parses
CLUSTER_PYTEST := $(PY) -m pytest -p no:cacheprovider --randomly-dont-reorganize -m cluster tests/cluster

# The whole suite, what .ci/run runs: the pytest run (everything but the `cluster` and
# `faults` markers; starts the services it needs), then the cluster test (its own cluster,
# ports 31000-31600), then lint. All three run whatever the others gave; make test fails
# when any failed, and its last line says which.
test: install  ## the whole test suite: pytest, the cluster test (its own cluster), ruff and mypy
	@suite=0; cluster=0; lint=0; \
	$(PY) -m pytest -p no:cacheprovider || suite=$$?; \
	echo "== make test: the cluster test (tests/cluster, marker cluster; 13-17 min)"; \
	$(CLUSTER_PYTEST) || cluster=$$?; \
	$(MAKE) --no-print-directory lint || lint=$$?; \
	word() { if [ "$$1" = 0 ]; then echo passed; else echo "FAILED (exit $$1)"; fi; }; \
	echo "== make test: pytest $$(word $$suite), cluster test $$(word $$cluster), lint $$(word $$lint)"; \
	[ "$$suite$$cluster$$lint" = 000 ]

test-fast: ## unit and DAG tests only (no services)
	@$(PY) -m pytest -m "not service and not slow"

lint:  ## ruff, mypy and the import contracts (import-linter)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check --quiet include dags plugins tests benchmarks
	@$(VENV)/bin/mypy
	@cd include && ../$(VENV)/bin/lint-imports --config ../pyproject.toml

# PROFILE=cluster: the cluster profile (Celery, 3 Kafka brokers, Spark standalone, MinIO
# erasure-coded) under .platform/cluster, on ports 29000-29600
PROFILE ?= local
PLATFORM_CLI := $(if $(filter cluster,$(PROFILE)),canopywatch_dev.platform.cluster,canopywatch_dev.platform)
ifeq ($(filter local cluster,$(PROFILE)),)
$(error PROFILE=$(PROFILE): choose local or cluster)
endif

platform-up: install  ## start PostgreSQL/PostGIS, Kafka, MinIO, the CDSE endpoint and Airflow (PROFILE=cluster: the cluster)
	@$(PY) -m $(PLATFORM_CLI) up

platform-down:  ## stop every service (data stays under .platform/; PROFILE=cluster: the cluster)
	@$(PY) -m $(PLATFORM_CLI) down

platform-status:  ## one line per service: state, address, pid, log file (PROFILE=cluster: the cluster)
	@$(PY) -m $(PLATFORM_CLI) status

test-cluster: install  ## the cluster profile's end-to-end test alone (kill -9 mid-run; 13-17 min, its own cluster)
	@$(CLUSTER_PYTEST)

test-faults: install  ## the long fault campaign (40 runs, a kill -9 each; FAULTS_RUNS=N, FAULTS_SEED=S replays)
	@CANOPYWATCH_FAULTS_RUNS=$(or $(FAULTS_RUNS),40) CANOPYWATCH_FAULTS_SEED=$(FAULTS_SEED) \
	  $(PY) -m pytest -p no:cacheprovider --randomly-dont-reorganize -s -m faults tests/integration/test_fault_campaign.py

login:  ## print every console and its login (Airflow UI, MinIO console, PostGIS, CDSE endpoint, API key)
	@$(PY) -m canopywatch_dev.platform login

bench: install  ## run the benchmarks (comparison tables); needs the platform (make platform-up)
	@$(PY) benchmarks/download.py
	@$(PY) benchmarks/lake.py
	@$(PY) benchmarks/cog.py
	@$(PY) benchmarks/detection.py
	@$(PY) benchmarks/detection_peers.py

train: install  ## retrain the change-detection model (dvc repro in ml/, offline)
	@cd ml && dvc repro && dvc metrics show

lock:  ## re-resolve requirements/base.in into the pinned requirements.txt
	@rm -rf /tmp/canopywatch-lock && python3.11 -m venv /tmp/canopywatch-lock
	@/tmp/canopywatch-lock/bin/pip install -q -r requirements/base.in
	@{ echo "# Fully pinned resolution of requirements/base.in for Python 3.11 (regenerate: make lock)."; \
	   /tmp/canopywatch-lock/bin/pip freeze; } > requirements.txt

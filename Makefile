# seqops: `make up` runs the platform, `make test` runs the tests. Both set up .venv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; seqops needs Python 3.11 (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The lock pins every package (torch==2.13.0+cpu: its CPU wheel, no CUDA downloads).
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv with the locked stack

up: $(STAMP) ## Start the platform (Airflow UI, MLflow UI) and ingest the demo data
	$(BIN)/seqops platform up

down: ## Stop exactly what `make up` started
	@if [ -x $(BIN)/seqops ]; then $(BIN)/seqops platform down; else echo "nothing to stop (no .venv)"; fi

status: $(STAMP) ## Show which platform processes are running
	$(BIN)/seqops platform status

sysdeps: ## Install PostgreSQL and Redis servers from Debian packages if missing (production-profile tests)
	@if command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql redis-server >/dev/null; fi

test: $(STAMP) sysdeps ## Run the whole test suite (starts throw-away PostgreSQL and Redis for the production tests)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the suite without tests marked slow
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP) ## Run the public benchmarks (M4 Hourly, ETTh1) and the feature-store benchmark
	$(BIN)/seqops bench m4-hourly
	$(BIN)/seqops bench etth1
	$(BIN)/python benchmarks/bench_features.py

bench-neuralforecast: $(STAMP) ## Our LSTM vs NeuralForecast's LSTM, side by side (installs neuralforecast)
	$(BIN)/pip install --quiet neuralforecast "torch==2.13.0"
	$(BIN)/python benchmarks/bench_neuralforecast.py --threads 1

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lock: ## Re-pin requirements.lock from the current .venv (after changing pyproject.toml)
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean: down ## Stop the platform and delete its state (SEQOPS_HOME under the checkout)
	rm -rf .seqops

.PHONY: help sysdeps venv up down status test test-fast bench bench-neuralforecast lint lock clean

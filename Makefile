# seqops: `make up` runs the platform, `make test` checks everything (lint, import contract, tests).
# Both set up .venv first: `make up` from the runtime lock only, `make test` adds the dev lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQ := requirements
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
BENCH := $(VENV)/.bench-installed
# checkov (the Terraform policy check) cannot share a lock with the platform: it gets its own venv.
CHECKOV := .venv-checkov/.installed
# torch==2.13.0+cpu is PyTorch's CPU wheel, published on its CPU index. Where pip's configuration
# does not already provide it (a find-links folder or a mirror), pass the index:
#   make up PIP_TORCH="--extra-index-url https://download.pytorch.org/whl/cpu"
PIP_TORCH ?=
PIP_INSTALL := $(BIN)/pip install --quiet $(PIP_TORCH)
export SEQOPS_BENCH_DATA_DIR ?= $(abspath ../shared/data)
COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --no-strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(RUNTIME): $(REQ)/runtime.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; seqops needs Python 3.11 (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(PIP_INSTALL) -r $(REQ)/runtime.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(RUNTIME)

$(DEV): $(RUNTIME) $(REQ)/dev.txt
	$(PIP_INSTALL) -r $(REQ)/dev.txt
	@touch $(DEV)

$(BENCH): $(RUNTIME) $(REQ)/bench.txt
	$(PIP_INSTALL) -r $(REQ)/bench.txt
	@touch $(BENCH)

$(CHECKOV): $(REQ)/checkov.txt
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet -r $(REQ)/checkov.txt
	@touch $(CHECKOV)

venv: $(RUNTIME) ## Create .venv with the runtime lock (what `make up` needs, nothing more)

up: $(RUNTIME) ## Start the platform (Airflow UI, MLflow UI) and ingest the demo data
	$(BIN)/seqops platform up

up-production: $(DEV) sysdeps ## The production profile on this machine: PostgreSQL, Redis, an S3 stand-in, Celery workers, the platform
	infra/local/production.sh up

down-production: ## Stop exactly what `make up-production` started (data kept; `infra/local/production.sh purge` deletes it)
	@if [ -x $(BIN)/seqops ]; then infra/local/production.sh down; else echo "nothing to stop (no .venv)"; fi

down: ## Stop exactly what `make up` started
	@if [ -x $(BIN)/seqops ]; then $(BIN)/seqops platform down; else echo "nothing to stop (no .venv)"; fi
	@# a platform started before SEQOPS_HOME moved to ~/.seqops keeps its pid files in ./.seqops
	@if [ -x $(BIN)/seqops ] && [ -d .seqops/run ]; then SEQOPS_HOME=$(CURDIR)/.seqops $(BIN)/seqops platform down; fi

status: $(RUNTIME) ## Show which platform processes are running
	$(BIN)/seqops platform status

sysdeps: ## Install PostgreSQL, Redis (production-profile tests), Chromium with its driver (browser tests) and wrk (serving benchmark) from Debian if missing
	@if command -v redis-server >/dev/null && command -v wrk >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql redis-server wrk chromium chromium-driver >/dev/null; fi

lint: $(DEV) ## ruff lint and format check, and the import-linter layer contract
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# import-linter walks the seqops folder, where a symlink stands for each top-level folder the
	@# wheel maps into `seqops` (seqops/training -> ../training): it reads the package as installed
	$(BIN)/lint-imports --no-cache

test: lint sysdeps $(CHECKOV) ## Lint, then run the whole test suite (throw-away PostgreSQL and Redis for the production tests)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-fast: $(DEV) $(CHECKOV) ## Run the suite without tests marked slow
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

bench: $(BENCH) ## The accuracy benchmarks behind benchmarks/README.md (M4 Hourly, ETTh1, the PJM backtest, with their peers)
	$(BIN)/seqops bench m4-select --jobs 2 --out benchmarks/results/m4_hourly_selection.json
	$(BIN)/seqops bench m4-hourly --split test --seeds 3 --jobs 2 --peers all --out benchmarks/results/m4_hourly.json
	$(BIN)/seqops bench etth1 --seeds 3 --jobs 2 --out benchmarks/results/etth1.json
	$(BIN)/python benchmarks/bench_backtest_peers.py --out benchmarks/results/pjm_backtest.json

bench-features: $(RUNTIME) ## The feature-store benchmark (seqops next to plain Feast)
	$(BIN)/python benchmarks/bench_features.py --ttl-study --out benchmarks/results/features.json

bench-platform: bench-features $(RUNTIME) sysdeps ## The platform's own benchmarks: features, ingest, serving, drift, scale
	$(BIN)/python benchmarks/bench_ingest.py --out benchmarks/results/ingest.json
	$(BIN)/python benchmarks/bench_serving.py --workers 1 --out benchmarks/results/serving.json
	$(BIN)/python benchmarks/bench_drift.py --out benchmarks/results/drift.json
	$(BIN)/python benchmarks/bench_scale.py --out benchmarks/results/scale.json

bench-neuralforecast: $(BENCH) ## Our LSTM vs NeuralForecast's LSTM, side by side (the bench lock)
	$(BIN)/python benchmarks/bench_neuralforecast.py --threads 1 --steps 500

lock: $(DEV) ## Re-resolve the locks from pyproject.toml: runtime, then dev and bench against it
	$(COMPILE) -o $(REQ)/runtime.txt pyproject.toml
	$(COMPILE) --extra dev -c $(REQ)/runtime.txt -o $(REQ)/dev.txt pyproject.toml
	$(COMPILE) --extra bench -c $(REQ)/runtime.txt -o $(REQ)/bench.txt pyproject.toml
	$(COMPILE) -o $(REQ)/checkov.txt $(REQ)/checkov.in

clean: down ## Stop the platform and delete its state (SEQOPS_HOME, default ~/.seqops)
	@home=$$($(BIN)/python -c 'from seqops.core.settings import Settings; print(Settings().home)') && \
	  echo "removing $$home" && rm -rf "$$home"

.PHONY: help sysdeps venv up up-production down-production down status lint test test-fast bench bench-features bench-platform bench-neuralforecast lock clean

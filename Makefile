# Tessera: `make run` builds the demo end to end, `make test` runs the suite. Nothing to install
# by hand: the first call bootstraps uv into .tools/ and syncs .venv from uv.lock.
SHELL := /bin/bash
# Resolved once, here, before the venv goes on PATH below.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell command -v python3.11 || command -v python3)
endif
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
MANIFEST := dbt_project/target/manifest.json
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
export DAGSTER_HOME ?= $(abspath $(or $(TESSERA_DATA_DIR),data))/dagster_home
export PYTHONUNBUFFERED := 1
# The venv's tools first: dagster dev re-parses the dbt project with the `dbt` it finds on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup system-deps run dev test lint lint-python lint-sql quality-rules format bench clean

setup: $(VENV)/.synced $(MANIFEST)

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Python caches the bytecode of what it imports (PYTHONDONTWRITEBYTECODE, set on some machines,
# is dropped for every command here): without .pyc files every Dagster step process compiles
# what it imports again (dagster, Great Expectations, LightGBM: 11 s -> 5 s per import). Caching
# on first import costs about 8 s once; `uv sync --compile-bytecode` compiled all 13,000 files of
# the venv up front instead, 2 min 11 s of every fresh `make test` on 2 cores.
unexport PYTHONDONTWRITEBYTECODE
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

# dagster-dbt loads the dbt manifest at import time; parse whenever the dbt project changes.
$(MANIFEST): $(VENV)/.synced $(shell find dbt_project -name '*.sql' -o -name '*.yml' 2>/dev/null | grep -v '/target/')
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --target-path target
	touch $@

run: setup
	$(BIN)/tessera run --days $(or $(DAYS),14)

# The UI, the daemon (schedules, sensors) and the local provider sink on 127.0.0.1:8725, which
# scheduled sends reach unless real provider credentials and TESSERA_LIVE_SENDS=true are set,
# and the review app (docs/review.md) on 127.0.0.1:$(REVIEW_PORT). Its approvals and holds run
# Dagster's approve_and_send job through the UI's GraphQL API. The first `make dev` adds you
# (your login name) as a reviewer with a generated password, kept in $(REVIEW_PASSWORD_FILE).
REVIEW_PORT ?= 8730
DATA_DIR := $(abspath $(or $(TESSERA_DATA_DIR),data))
REVIEW_PASSWORD_FILE := $(DATA_DIR)/review-password
dev: setup
	$(BIN)/python -c "from tessera.orchestration.run_cli import ensure_dagster_home; from tessera.settings import load_settings; ensure_dagster_home(load_settings())"
	@if [ ! -e "$${TESSERA_REVIEW_USERS:-$(DATA_DIR)/review-users.yml}" ]; then \
	  $(BIN)/tessera review add-user "$$(id -un)" --generate-password $(REVIEW_PASSWORD_FILE); fi
	$(BIN)/tessera sink --port 8725 & sink=$$!; \
	TESSERA_DAGSTER_URL=http://127.0.0.1:3000 $(BIN)/tessera review --port $(REVIEW_PORT) & \
	review=$$!; \
	trap 'kill $$sink $$review 2>/dev/null' EXIT INT TERM; \
	echo "Dagster UI: http://127.0.0.1:3000   review app (marketing ops): http://127.0.0.1:$(REVIEW_PORT)"; \
	if [ -e $(REVIEW_PASSWORD_FILE) ]; then \
	  echo "review app: sign in as $$(id -un), password in $(REVIEW_PASSWORD_FILE)"; fi; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# pytest exits 5 when it collects no test: that is a failure of the suite, not a pass.
# One worker per core (at most 4), whole test files per worker so module fixtures build once.
# System packages the tests need (Chromium for the browser test), installed when missing.
system-deps:
	bash scripts/system-deps.sh

# The lint runs first, so CI fails on style as it fails on a test.
test: lint system-deps
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile $(PYTEST_ARGS)

# Python (ruff) and SQL (sqlfluff over the dbt models, .sqlfluff); .pre-commit-config.yaml runs
# the same. sqlfluff's dbt templater opens a profile connection: it gets a scratch data dir of
# its own, so it never contends with a pipeline holding the warehouse, and a placeholder
# campaign date (customer_features compiles only with one).
SQLFLUFF_DATA := $(abspath dbt_project/target/sqlfluff)
lint: lint-python lint-sql

lint-python: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-sql: setup
	mkdir -p $(SQLFLUFF_DATA)
	TESSERA_DATA_DIR=$(SQLFLUFF_DATA) TESSERA_AS_OF=2000-01-01 $(BIN)/sqlfluff lint --processes 2 dbt_project/models

# Rewrites the dbt files generated from the rule registry (src/tessera/quality/rules.yml).
quality-rules: setup
	$(BIN)/python -m tessera.quality.generate

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python -m tessera.bench.run $(if $(SIZES),--sizes $(SIZES),) $(if $(MINUTES),--minutes $(MINUTES),)

clean:
	rm -rf $(VENV) .tools dbt_project/target data

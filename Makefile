# leadscore: `make demo` runs the whole path on synthetic data, `make test` runs the tests.
# Both create the project's virtual environment (.venv) first; nothing else is needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := data/demo
PORT   ?= 8000

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint typecheck sizes bench clean browser postgres java serve

help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install leadscore with its dev tools

browser: ## Install headless Chromium from Debian (for the HTML report tests)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

postgres: ## Install PostgreSQL from Debian (the store's tests start their own server with it)
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi; }

java: ## Install a Java runtime from Debian (the Spark path's tests run a local Spark)
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; fi; }

demo: $(STAMP) ## Run the whole main job on synthetic data (local MLflow under mlruns/)
	$(BIN)/leadscore demo --out $(DEMO) --port $(PORT)

# Two pytest workers, a test file each at a time (module fixtures are built once); tests/conftest.py
# gives every process one compute thread, so two workers fill two cores without OpenMP threads
# spinning against each other. Tests that time a server under load (marker `serial`) run after
# them, alone. A single test: `.venv/bin/python -m pytest tests/x.py::test_y`.
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile

test: $(STAMP) browser postgres java ## Run the test suite (what CI runs; installs Chromium, PostgreSQL and Java first)
	$(PYTEST) -m "not serial"
	$(BIN)/python -m pytest -m serial

test-fast: $(STAMP) browser postgres java ## Run the tests without the slow and end-to-end ones
	$(PYTEST) -m "not slow and not e2e and not serial"

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP) ## mypy (strict) on src/ and tests/
	$(BIN)/mypy src tests

sizes: $(STAMP) ## Print the three largest functions, modules and classes of src/ (tests/test_sizes.py holds the limits)
	$(BIN)/python tests/test_sizes.py

bench: $(STAMP) ## Run the benchmarks (prints figures; not part of the tests)
	$(BIN)/python benchmarks/bench_generate.py

clean: ## Remove generated data, runs and models (keeps .venv)
	rm -rf data/demo mlruns/mlflow.db mlruns/artifacts models/*/ .pytest_cache

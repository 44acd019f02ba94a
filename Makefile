# The commands of the project: install, serve, test, lint. CI runs `make lint` and `make test` (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per extra and per version of pyproject.toml: a second `make serve` installs nothing,
# and `make test` after `make serve` adds only the development extra.
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUNTIME := $(VENV)/.installed-runtime-$(SUM)
DEV := $(VENV)/.installed-dev-$(SUM)

.PHONY: install install-dev serve demo test lint system-deps format bench clean

# What serving needs, and nothing else (no linters, type checker or Presidio).
install: $(RUNTIME)

# The rest: tests, lint, the redaction bench's reference.
install-dev: $(DEV)

# A venv for this version of pyproject.toml: what an earlier version installed is stale.
define NEW_VENV
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	rm -f $(VENV)/.installed-*
endef

$(RUNTIME): pyproject.toml
	$(NEW_VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# On a clean clone, the project is installed once, with the extra (which holds the runtime, so
# both stamps are set); after `make serve`, only the extra is added.
$(DEV): pyproject.toml
ifeq ($(wildcard $(RUNTIME)),)
	$(NEW_VENV)
endif
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(RUNTIME) $@

serve: install
	$(BIN)/consentry serve

# A gateway of its own (./consentry-demo-data, a free port) with simulated traffic
# (docs/demo.md); DEMO_ARGS passes options, e.g. DEMO_ARGS="--duration 30 --seed 7".
demo: install
	$(BIN)/consentry demo $(DEMO_ARGS)

bench: install-dev
	$(BIN)/consentry bench $(BENCH_ARGS)

system-deps:
	scripts/system-deps

# The browser tests' JavaScript (axe-core), as package-lock.json pins it: installed on a clean
# clone and again when the lock file changes, not on every run.
NPM := node_modules/.installed-npm
$(NPM): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Test files are spread over TEST_WORKERS processes (each its own PostgreSQL cluster), a
# whole file to one process; TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 2
test: install-dev system-deps $(NPM)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache

format: install-dev
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

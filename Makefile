# The commands of the project: install, serve, test, lint. CI runs `make lint` and `make test` (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per extra and per version of pyproject.toml: a second `make serve` installs nothing,
# and `make test` after `make serve` adds only the development extra.
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUNTIME := $(VENV)/.installed-runtime-$(SUM)
DEV := $(VENV)/.installed-dev-$(SUM)
# The native core (core/, Rust, DESIGN.md "The native core"): maturin builds it into
# src/consentry/_core*.so (release profile) at every `pip install -e .`; its stamp rebuilds it
# when a Rust source, a Cargo.toml or Cargo.lock changes. Needs cargo and rustc.
CARGO ?= cargo
CORE_MANIFEST := core/Cargo.toml
CORE_SOURCES := $(shell find core \( -path core/target -o -path core/fuzz \) -prune -o \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -print)
CORE := $(VENV)/.built-core

.PHONY: install install-dev serve demo test lint system-deps kafka format bench fuzz clean

# What serving needs, and nothing else (no linters, type checker or Presidio).
install: $(RUNTIME) $(CORE)

# The rest: tests, lint, the redaction bench's reference.
install-dev: $(DEV) $(CORE)

# A venv for this version of pyproject.toml: what an earlier version installed is stale.
define NEW_VENV
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	rm -f $(VENV)/.installed-*
endef

$(RUNTIME): pyproject.toml
	$(NEW_VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $@ $(CORE)

# On a clean clone, the project is installed once, with the extra (which holds the runtime, so
# both stamps are set); after `make serve`, only the extra is added.
$(DEV): pyproject.toml
ifeq ($(wildcard $(RUNTIME)),)
	$(NEW_VENV)
endif
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(RUNTIME) $@ $(CORE)

# The core alone, rebuilt when its sources change (the install above built it and set the stamp).
$(CORE): $(CORE_SOURCES)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

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

# The Apache Kafka broker of the tests (tests/kafka.py, `scripts/kafka up`): the jars that
# scripts/kafka-pom.xml pins, fetched by Maven into ${XDG_CACHE_HOME:-~/.cache}/consentry, outside
# the repository. The stamp there holds the pom's checksum: fetched once, again when it changes.
kafka: system-deps
	scripts/kafka fetch

# Test files are spread over TEST_WORKERS processes (each its own PostgreSQL cluster), a
# whole file to one process; TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 2
test: install-dev system-deps kafka $(NPM)
	PYO3_PYTHON=$(abspath $(BIN)/python) $(CARGO) test --workspace --locked --quiet --manifest-path $(CORE_MANIFEST)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Fuzz the core's decoders (core/fuzz: cargo-fuzz and libFuzzer on a nightly toolchain), each
# target for FUZZ_SECONDS; cargo-fuzz is installed from crates.io when missing. Not part of
# `make test`: it would take minutes of its time.
FUZZ_SECONDS ?= 60
fuzz:
	$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd core && for target in $$($(CARGO) +nightly fuzz list); do \
		$(CARGO) +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

# The dependency audit (scripts/audit_dependencies.py, pip-audit against PyPI's advisory data)
# fails on a known vulnerability and is skipped, with a message, when that data is unreachable.
lint: install-dev
	$(CARGO) fmt --all --check --manifest-path $(CORE_MANIFEST)
	PYO3_PYTHON=$(abspath $(BIN)/python) $(CARGO) clippy --workspace --all-targets --locked --quiet --manifest-path $(CORE_MANIFEST) -- -D warnings
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/python scripts/audit_dependencies.py

format: install-dev
	$(CARGO) fmt --all --manifest-path $(CORE_MANIFEST)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache core/target src/consentry/_core*.so

# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: demo test test-sqlite test-postgres lint typecheck bench clean

$(BIN)/gpulease: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray,gpu]'
	touch $@

## demo: the server with an embedded SQLite store, a demo facility and the bundled lists, on $(HOST):$(PORT)
## (make demo PORT=8001 HOST=0.0.0.0)
demo: $(BIN)/gpulease
	$(BIN)/gpulease demo --host '$(HOST)' --port '$(PORT)'

## test: lint, types, then the whole suite on SQLite and on PostgreSQL
test: $(BIN)/gpulease lint typecheck test-sqlite test-postgres

test-sqlite: $(BIN)/gpulease
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-postgres: $(BIN)/gpulease
	@$(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_TEST_URL)').close()" 2>/dev/null || \
	  { echo "PostgreSQL is not reachable at $(PG_TEST_URL): start it (see README) or set PG_TEST_URL"; exit 1; }
	GPULEASE_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(BIN)/gpulease
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-logo

typecheck: $(BIN)/gpulease
	$(BIN)/mypy

bench: $(BIN)/gpulease
	$(BIN)/python benchmarks/placement.py
	$(BIN)/python benchmarks/screening.py
	$(BIN)/python benchmarks/replay.py --trace philly

clean:
	rm -rf $(VENV) .gpulease .pytest_cache .mypy_cache .ruff_cache

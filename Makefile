# The two commands that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two installs, one stamp each: the demo needs only the package and dbt; the tests need the
# rest too. The dev install includes the demo's, so it stamps both: `make demo` after
# `make test` installs nothing, `make test` after `make demo` adds the dev extra.
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install demo test test-fast bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# the demo ends with the dbt models and the HTML report: those two extras, nothing more
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dbt,report]"
	touch $(DEMO_STAMP)

# the dbt extra first: resolving [dev] alone, pip meets dbt-postgres before the dbt pins and
# tries a newer dbt-core, whose parser package downloads at install time and fails offline
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dbt]"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP) $(DEMO_STAMP)

install: $(DEV_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/aiclicks-pipeline demo

# a worker per core (at most 4), a test file per worker: most tests wait on servers, windows
# and child processes, so two workers on two cores take about half the time of one; the 25
# slowest tests end the output (CI's too), so a test that grows slow is seen
test: $(DEV_STAMP)
	$(BIN)/pytest -q --numprocesses=auto --maxprocesses=4 --dist=loadfile --durations=25

# the pure unit tests (tests/unit/, marker `unit`): no server, warehouse, subprocess or sleep
test-fast: $(DEV_STAMP)
	$(BIN)/pytest -q tests/unit

# not part of the test suite: a few minutes; writes bench/RESULTS.md
bench: $(DEV_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo_output .pytest_cache

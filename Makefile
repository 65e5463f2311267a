# The two commands that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/aiclicks-pipeline demo

test: $(STAMP)
	$(BIN)/pytest -q

# not part of the test suite: a few minutes; writes bench/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo_output .pytest_cache

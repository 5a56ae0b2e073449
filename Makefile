# Two entry points for a fresh machine with Python 3.11 + pip: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_OUT ?= demo-output

.PHONY: demo test bench lint coverage mutation clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(PY) -m luprrt.cli demo --out $(DEMO_OUT)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(STAMP)
	$(PY) -m Testing.benchmarks

lint: $(STAMP)
	$(PY) -m ruff check .

# Line coverage of the whole suite, the cohort's spawned workers and CLI child processes included
# ([tool.coverage.run] patch = subprocess, _exit); prints the per-file table and the total.
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest --cov --cov-report=term
	$(PY) -m coverage report --format=total | sed 's/^/line coverage (%): /'

# Mutation testing of the quantitative core (mutmut, [tool.mutmut] in pyproject.toml): a report on the
# tests' strength, hours on two cores, never part of make test. Resumable: run it again to continue.
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e ".[mutation]"
	nice $(PY) -m mutmut run || true
	$(PY) -m Testing.mutation_score

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache mutants .coverage .coverage.*

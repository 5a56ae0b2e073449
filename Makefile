# Two entry points for a fresh machine with Python 3.11 + pip: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_OUT ?= demo-output

.PHONY: demo test bench lint coverage mutation clean system-deps sim-data screenshots

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

# Debian packages some checks need: dciodvfy (dicom3tools) and the Orthanc PACS (independent DICOM
# checks), chromium (headless browser check of the cohort report). Best effort and quiet: installed
# only as root where apt-get exists; the tests that need them skip with a named reason where they
# are missing.
SYSTEM_PACKAGES = dicom3tools orthanc chromium

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: not root or no apt-get; skipping $$missing (their tests will skip)"; exit 0; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; } >/dev/null 2>&1 \
		|| echo "system-deps: could not install $$missing (their tests will skip)"

# The OSEM SPECT fixture (Testing/data/osem): installs the optional `sim` extra (pytomography, torch CPU)
# and simulates + reconstructs every scan (tens of minutes on 2 cores, run at low priority).
sim-data: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,sim]"
	nice -n 10 $(PY) -m luprrt.phantom.osem_fixture --out Testing/data/osem --overwrite

# A PNG of each module panel before and after Apply (docs/panels), rendered offscreen on real Qt with
# Slicer's own scripted-module layer (LUPRRT_SLICER_SOURCE or ../shared/upstream/slicer).
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m Testing.slicer_host.screenshots --out docs/panels

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
# mutmut runs in build/mutation (Testing/mutation_setup.py says why). Subsets and a sample:
#   make mutation MUTATE="liver/tn.py regionstats.py"       files or folders under LuPRRTExtension/luprrt
#   make mutation MUTATE_TESTS="Testing/core/liver"          tests that may kill them (default Testing/core/)
#   make mutation SAMPLE=10                                  a fixed 1-in-10 sample of the mutants
MUTATE ?=
MUTATE_TESTS ?=
SAMPLE ?= 1
MUTATION_DIR = build/mutation
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e ".[mutation]"
	$(PY) -m Testing.mutation_setup $(MUTATE) $(if $(MUTATE_TESTS),--tests $(MUTATE_TESTS))
	cd $(MUTATION_DIR) && if [ "$(SAMPLE)" = 1 ]; then nice $(abspath $(PY)) -m mutmut run || true; else \
		nice $(abspath $(PY)) -m mutmut run "luprrt.generate-only" >/dev/null 2>&1 || true; \
		nice $(abspath $(PY)) -m mutmut run $$($(abspath $(PY)) -m Testing.mutation_score --sample $(SAMPLE) --names) || true; fi
	cd $(MUTATION_DIR) && $(abspath $(PY)) -m Testing.mutation_score --sample $(SAMPLE)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache build/mutation .coverage .coverage.*

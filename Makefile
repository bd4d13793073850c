# catclean: two commands for a fresh machine (see README.md)
#   make run   -> create .venv, install catclean + Snakemake, run the default (synthetic, offline) pipeline
#   make test  -> create .venv, install catclean + test tools, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
SNAKEMAKE_ARGS ?=

.PHONY: setup run test lint report bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[test]"
	touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)

report: setup
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

test: setup
	bash scripts/install_system_tools.sh || true
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/snakemake --lint

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf results/* .snakemake
	touch results/.gitkeep

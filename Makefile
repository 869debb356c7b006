# hybridrec: `make demo` and `make test` are all a new user needs; both run `make setup` first.
SHELL := /bin/bash
VENV := .venv
PROFILE ?= full
CATALOG ?=
PY := $(VENV)/bin/python
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(VENV)/bin/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(VENV)/bin/python)
export HOROVOD_GLOO_IFACE := lo
export TF_CPP_MIN_LOG_LEVEL := 1

.PHONY: setup reader-env test test-all docs demo bench clean

setup:
	@bash scripts/setup.sh

# .venv-reader: the Spark-free environment of hybridrec.reader (deltalake + pandas; also run by setup)
reader-env:
	@bash scripts/reader_env.sh

test: setup
	$(PY) -m pytest

# The lint gate (.ci/run runs it before the tests): ruff lint, ruff format check, and the import
# layers of ARCHITECTURE.md (import-linter contracts in pyproject.toml). `make format` fixes the first two.
.PHONY: lint format
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-all: setup
	$(PY) -m pytest -m ""

# docs/ (nav in mkdocs.yml) built into site/; --strict fails on a broken link or a page missing from nav
docs: setup
	$(VENV)/bin/mkdocs build --strict --site-dir site

# Opt-in: jobs killed with SIGKILL at seeded points, readers during writes, standalone-cluster runs
.PHONY: test-cluster
test-cluster: setup
	$(PY) -m pytest -m cluster

# The Databricks bundle (databricks.yml, resources/, conf/databricks.yaml) checked without a workspace
.PHONY: bundle-check
bundle-check: setup
	$(PY) -m tools.bundle_check

# make demo CATALOG=retail: the chain on real purchases (Online Retail, conf/retail.yaml)
demo: setup
	PROFILE=$(PROFILE) CATALOG=$(CATALOG) bash scripts/demo.sh

# Every benchmark; bench_retail.py needs the Online Retail pipeline first (bench-retail runs it).
bench: setup bench-retail
	@for b in bench/bench_*.py; do [[ $$b == bench/bench_retail.py ]] && continue; echo "== $$b"; $(PY) $$b || exit 1; done

# Online Retail against tuned implicit ALS and LightFM (bench/results/retail.json): ingest, preprocess
# and train conf/retail.yaml when it has no current model yet, then the side-by-side benchmark.
RETAIL_CONF := conf/retail.yaml
.PHONY: bench-retail
bench-retail: setup
	@if ! $(PY) -c 'import sys; from pathlib import Path; from hybridrec.config import load_config; sys.exit(not (Path(load_config(sys.argv[1]).paths.models) / "current.json").is_file())' $(RETAIL_CONF); then \
	  for job in ingest preprocess train; do PATH=$(abspath $(VENV))/bin:$$PATH spark-submit jobs/$$job.py --config $(RETAIL_CONF) || exit 1; done; fi
	$(PY) bench/bench_retail.py --config $(RETAIL_CONF)

clean:
	rm -rf data report .pytest_cache

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

.PHONY: setup reader-env test test-all demo bench clean

setup:
	@bash scripts/setup.sh

# .venv-reader: the Spark-free environment of hybridrec.reader (deltalake + pandas; also run by setup)
reader-env:
	@bash scripts/reader_env.sh

test: setup
	$(PY) -m pytest

test-all: setup
	$(PY) -m pytest -m ""

# Opt-in: jobs killed with SIGKILL at seeded points, readers during writes, standalone-cluster runs
.PHONY: test-cluster
test-cluster: setup
	$(PY) -m pytest -m cluster

# The Databricks bundle (databricks.yml, resources/, conf/databricks.yaml) checked without a workspace
.PHONY: bundle-check
bundle-check: setup
	$(PY) -m hybridrec.bundle_check

# make demo CATALOG=retail: the chain on real purchases (Online Retail, conf/retail.yaml)
demo: setup
	PROFILE=$(PROFILE) CATALOG=$(CATALOG) bash scripts/demo.sh

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf data report .pytest_cache

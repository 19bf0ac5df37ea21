# segflow: the two commands. Both create .venv if missing and install segflow into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.segflow-installed

.PHONY: demo test lint bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[spark,postgres,server,test]"
	@# the bytecode on every core (pip compiles one file after another: 46 -> 37 s in all);
	@# a cache only, so a file that does not compile is no error here
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src >/dev/null || true
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/segflow demo --out out

# The suite on every core (pytest-xdist); tests that share a costly fixture stay on one
# worker, and the Spark tests on two (the cluster's, the local session's; one JVM each):
# see xdist_group_of in tests/conftest.py.
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto

# The numeric libraries' thread pools at one per worker: two workers with a pool per core each
# oversubscribed the cores (session 59: 1,190 -> 1,149 s, 72 CPU-s less, the same results).
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/run_all.py

clean:
	rm -rf out .pytest_cache build *.egg-info

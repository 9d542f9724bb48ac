# mr1 — every target installs what it needs first (`setup` is idempotent and fast when done).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q -c constraints.txt
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Idle OpenMP threads sleep rather than spin (workers set it too; this covers the parent process).
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup setup-bench test test-fast test-slow test-paper reproduce figures bench lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[dev]"
	touch $@

setup-bench: $(VENV)/.installed-bench

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) -e ".[dev,bench]"
	touch $@

# All tests: the fast suite, then the slow end-to-end suites. pytest exits 5 when it
# collects nothing, which fails the target like any other failure.
# The `paper` tests (the paper profile at real size, several minutes on 2 CPU cores) are left to `test-paper`.
# The tests install the bench extra (TRL) so that the TRL comparisons and the GPU check's CPU smoke run.
# One pytest worker per CPU (pytest-xdist), each test file on one worker, one torch thread each: the
# tests that want more threads or processes ask for them themselves.
TEST_WORKERS ?= auto
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
test: setup-bench
	$(PYTEST) -m "not slow and not paper"
	$(PYTEST) -m "slow and not paper" --durations=8

test-fast: setup-bench
	$(PYTEST) -m "not slow and not paper"

test-slow: setup-bench
	$(PYTEST) -m "slow and not paper" --durations=8

test-paper: setup
	$(BIN)/python -m pytest -m paper -q -s

# --jobs 0: one worker per CPU thread (or per GPU) of this machine; JOBS=1 runs in one process.
JOBS ?= 0
reproduce: setup
	$(BIN)/mr1 reproduce all --profile tiny --jobs $(JOBS)

figures: setup
	$(BIN)/mr1 figures

bench: setup-bench
	$(BIN)/mr1 bench grpo --profile tiny

lint: setup
	$(BIN)/ruff check mr1cli tests
	$(BIN)/ruff format --check mr1cli tests

clean:
	rm -rf $(VENV) .mr1-cache .pytest_cache .hypothesis   # the model cache is per user: $$MR1_CACHE or ~/.cache/mr1

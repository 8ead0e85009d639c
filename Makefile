# emnet — the two commands users need are `make report` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-setup
SYSSTAMP := $(VENV)/.stamp-system
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system test test-all lint format report report-quick bench clean

setup: $(STAMP)

# System packages: Graphviz's dot (computation-graph pictures) and Debian's chromium +
# chromium-driver (the report's browser test). Installed with apt-get only when missing.
$(SYSSTAMP):
	@mkdir -p $(VENV)
	@if ! command -v dot >/dev/null || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing system packages: graphviz chromium chromium-driver"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends graphviz chromium chromium-driver >/dev/null; \
	fi
	@touch $@

$(STAMP): pyproject.toml constraints.txt $(SYSSTAMP)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: a plain `torch` would pull several GB of CUDA packages.
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The default suite leaves out the tests marked slow (calibration runs of the bootstrap
# tests, minutes each); `make test-all` runs every test.
test: setup lint
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup lint
	$(BIN)/python -m pytest -q

report: setup
	$(BIN)/emnet report --out report --force

report-quick: setup
	$(BIN)/emnet report --quick --out report --force

bench: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python benchmarks/bmm.py
	$(BIN)/python benchmarks/lca.py
	$(BIN)/python benchmarks/lpa.py
	$(BIN)/python benchmarks/lpa_threads.py
	$(BIN)/python benchmarks/bmm_peers.py
	$(BIN)/python benchmarks/bmm_memory.py
	$(BIN)/python benchmarks/resnet.py
	$(BIN)/python benchmarks/autodiff.py

clean:
	rm -rf $(VENV) report .pytest_cache .ruff_cache .hypothesis

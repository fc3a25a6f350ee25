# Two commands do all set-up on a fresh machine: `make run` (the service) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= covariates,chronos,prophet,flowstate,ui-test,dev

.PHONY: install run stop test lint format unit browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Pinned CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	# FlowState: granite-tsfm's metadata asks for torch<2.12, yet it runs on 2.13.
	$(BIN)/python -m pip install --quiet --no-deps granite-tsfm==0.3.11
	touch $(STAMP)

install: $(STAMP)

run: install
	./scripts/run.sh

# Stops the local Ray instance `make run` started (Ctrl-C stops only `serve run`).
stop:
	./scripts/stop.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sapheneia deployments frontend bench

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Headless Chromium for the web UI tests, from Debian's packages (test tools cannot download one).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver; fi; }

unit: install
	$(BIN)/python -m pytest tests/sapheneia

test: install browser lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Two commands do all set-up on a fresh machine: `make run` (the service) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= covariates,chronos,prophet,flowstate,mlflow,ui-test,dev
# Which torch build: `pypi` (default) takes torch==2.13.0 from PyPI, which on an ordinary Linux
# x86_64 machine is the CUDA build (several GB; runs on the CPU too) and where pip has a CPU wheel
# cached locally is that one; `cpu` takes the CPU-only build from PyTorch's own index (about 200 MB,
# no GPU), which needs https://download.pytorch.org reachable.
TORCH ?= pypi
TORCH_INDEX_cpu := --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
TORCH_INDEX_pypi :=

.PHONY: install run stop test lint format unit browser prometheus redis bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch pinned first, so no other package's looser requirement picks a different build.
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX_$(TORCH)) torch==2.13.0
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

# Prometheus and promtool for the monitoring tests (a real scrape of the running service), from
# Debian's package; without its recommends, which would add exporters that nothing here uses.
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends prometheus; fi; }

# redis-server for the shared state store's tests (a real Redis on loopback), from Debian's package.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends redis-server; fi; }

unit: install
	$(BIN)/python -m pytest tests/sapheneia

test: install browser prometheus redis lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.run_all

# The service at saturation with a realistic mix for MINUTES (default 10); appended to bench/RESULTS.md.
MINUTES ?= 10
soak: install
	$(BIN)/python -m bench.soak --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

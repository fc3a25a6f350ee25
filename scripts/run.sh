#!/usr/bin/env bash
# Single-machine start: a Ray head on loopback (dashboard on 127.0.0.1:8265), then the Serve config.
# With RAY_ADDRESS set, joins that cluster instead of starting one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
# Ray workers run in their own directories: hand them absolute paths through the environment that
# `ray start` passes on to them.
export SAPHENEIA_DATA_DIR="$(realpath -m "${SAPHENEIA_DATA_DIR:-data}")"
export SAPHENEIA_STATE_DIR="$(realpath -m "${SAPHENEIA_STATE_DIR:-.sapheneia}")"
export SAPHENEIA_MODEL_DIR="$(realpath -m "${SAPHENEIA_MODEL_DIR:-models}")"
if [ -f .env ]; then set -a; . ./.env; set +a; fi
mkdir -p "$SAPHENEIA_DATA_DIR"
# Tell the operator where the API key is before anything else (generated owner-only if none is set).
sapheneia keys
if [ -z "${RAY_ADDRESS:-}" ]; then
  # A single-machine Ray on loopback. Ray rewrites --node-ip-address=127.0.0.1 to the machine's
  # network address unless it is told this is not a multi-machine cluster (the variable's name
  # mentions Windows/macOS, where that is the default). The cluster token (~/.ray/auth_token)
  # authenticates `serve run` to it.
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
  if ray status --address 127.0.0.1:6379 >/dev/null 2>&1; then
    echo "Using the Ray instance already running on 127.0.0.1:6379 (its environment holds the settings;"
    echo "run 'ray stop' first to apply changed SAPHENEIA_* variables)."
  else
    ray start --head --node-ip-address=127.0.0.1 --port=6379 \
      --dashboard-host=127.0.0.1 --dashboard-port=8265 --disable-usage-stats
  fi
  export RAY_ADDRESS=127.0.0.1:6379
  echo "Ray dashboard: http://127.0.0.1:8265   API: http://127.0.0.1:8000/docs   UI: http://127.0.0.1:8000/ui/"
fi
exec serve run serve_config.yaml

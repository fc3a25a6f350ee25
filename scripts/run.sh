#!/usr/bin/env bash
# Single-machine start: a Ray head on loopback with token authentication (dashboard and jobs API on
# 127.0.0.1:8265), then the Serve config. With RAY_ADDRESS set, joins that cluster instead of starting
# one (give it that cluster's token: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
# .env for the Ray workers too (they run elsewhere and read no .env); what the environment already
# sets wins over it, as in the settings that `sapheneia pull` and the server read.
if [ -f .env ]; then
  given="$(export -p)"
  set -a; . ./.env; set +a
  eval "$given"
fi
# Ray workers run in their own directories: hand them absolute paths through the environment that
# `ray start` passes on to them.
export SAPHENEIA_DATA_DIR="$(realpath -m "${SAPHENEIA_DATA_DIR:-data}")"
export SAPHENEIA_STATE_DIR="$(realpath -m "${SAPHENEIA_STATE_DIR:-.sapheneia}")"
export SAPHENEIA_MODEL_DIR="$(realpath -m "${SAPHENEIA_MODEL_DIR:-models}")"
mkdir -p "$SAPHENEIA_DATA_DIR"
# Tell the operator where the API key is before anything else (generated owner-only if none is set).
sapheneia keys
if [ -z "${RAY_ADDRESS:-}" ]; then
  # Token auth for the head, `ray status` and `serve run` alike (token in $SAPHENEIA_STATE_DIR).
  . scripts/ray_auth.sh
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
  if ray status --address 127.0.0.1:6379 >/dev/null 2>&1; then
    echo "Using the Ray instance already running on 127.0.0.1:6379 (its environment holds the settings;"
    echo "run 'make stop' first to apply changed SAPHENEIA_* variables)."
  else
    scripts/ray_head.sh
  fi
  export RAY_ADDRESS=127.0.0.1:6379
  echo "Ray dashboard: http://127.0.0.1:8265 (token: ${RAY_AUTH_TOKEN_PATH:-\$RAY_AUTH_TOKEN})"
  echo "API: http://127.0.0.1:8000/docs   UI: http://127.0.0.1:8000/ui/"
fi
exec serve run serve_config.yaml

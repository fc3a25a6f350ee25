#!/usr/bin/env bash
# Stop what `make run` started: the Ray head on 127.0.0.1:6379 (and with it the Serve app).
set -u
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH" RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export SAPHENEIA_STATE_DIR="$(realpath -m "${SAPHENEIA_STATE_DIR:-.sapheneia}")"
# The dashboard refuses `serve shutdown` without the token the head was started with.
. scripts/ray_auth.sh
serve shutdown --address http://127.0.0.1:8265 --yes 2>/dev/null || true
ray stop

#!/usr/bin/env bash
# The Docker image's command: a loopback Ray head with token auth, the API key, then `serve run`.
# serve_config.yaml is read, never rewritten (it may be mounted read-only): the copy that Serve runs,
# with the HTTP proxy on all interfaces so that `docker run -p 8000:8000` reaches it, goes to /tmp.
set -euo pipefail
cd /app
CONFIG="${SAPHENEIA_SERVE_CONFIG:-serve_config.yaml}"
RUN_CONFIG="$(mktemp /tmp/serve_config.XXXXXX.yaml)"
python - "$CONFIG" "$RUN_CONFIG" "${SAPHENEIA_HTTP_HOST:-0.0.0.0}" <<'PY'
import sys

import yaml

source, target, host = sys.argv[1:]
with open(source) as handle:
    config = yaml.safe_load(handle)
config.setdefault("http_options", {})["host"] = host
with open(target, "w") as handle:
    yaml.safe_dump(config, handle, sort_keys=False)
PY
# Prints where the API key is; a generated one lands in the state volume and survives restarts.
sapheneia keys
scripts/ray_head.sh
. scripts/ray_auth.sh
export RAY_ADDRESS=127.0.0.1:6379
# exec: `serve run` replaces this shell, so `docker stop`'s SIGTERM reaches it directly.
exec serve run "$RUN_CONFIG"

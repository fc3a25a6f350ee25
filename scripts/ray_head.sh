#!/usr/bin/env bash
# Starts a single-machine Ray head with token authentication, everything on loopback: the GCS, the
# node and the dashboard (with its jobs API) listen on 127.0.0.1 only. Used by run.sh, the Docker image
# and the test that checks a job without the token is refused. Extra arguments go to `ray start`
# (the test passes its own ports and --temp-dir).
set -euo pipefail
. "$(dirname "$0")/ray_auth.sh"
# Ray rewrites --node-ip-address=127.0.0.1 to the machine's network address unless it is told this is
# not a multi-machine cluster (the variable's name mentions Windows/macOS, where that is the default).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
exec ray start --head --node-ip-address=127.0.0.1 --port="${RAY_HEAD_PORT:-6379}" \
  --dashboard-host=127.0.0.1 --dashboard-port="${RAY_DASHBOARD_PORT:-8265}" \
  --disable-usage-stats "$@"

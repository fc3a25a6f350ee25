# Sourced (not run) by the scripts that start or talk to the local Ray head: turns on Ray's token
# authentication and points Ray at a token kept owner-only in the state directory.
#
# Ray 2.60 reads RAY_AUTH_MODE=token in every process (head, workers, `serve run`, the Job SDK), and the
# token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token. The dashboard
# and its jobs API then answer 401/403 to any request without `Authorization: Bearer <token>`, and the
# GCS refuses gRPC calls without it. `ray start` does not generate a token itself, so this does.
: "${SAPHENEIA_STATE_DIR:?set SAPHENEIA_STATE_DIR to an absolute directory first}"
if [ -n "${RAY_AUTH_MODE:-}" ] && [ "$RAY_AUTH_MODE" != token ]; then
  echo "RAY_AUTH_MODE=$RAY_AUTH_MODE: the Ray dashboard and jobs API run code for whoever reaches them," >&2
  echo "so this head only starts with token authentication (unset RAY_AUTH_MODE)." >&2
  return 1 2>/dev/null || exit 1
fi
export RAY_AUTH_MODE=token
if [ -z "${RAY_AUTH_TOKEN:-}" ]; then
  export RAY_AUTH_TOKEN_PATH="${RAY_AUTH_TOKEN_PATH:-$SAPHENEIA_STATE_DIR/ray_auth_token}"
  mkdir -p "$(dirname "$RAY_AUTH_TOKEN_PATH")"
  if [ ! -e "$RAY_AUTH_TOKEN_PATH" ]; then
    # umask 077 + noclobber: created owner-only, and never overwrites a token another start wrote.
    (umask 077 && set -C && python -c 'import secrets; print(secrets.token_hex(32))' \
      >"$RAY_AUTH_TOKEN_PATH") 2>/dev/null && echo "Ray token generated in $RAY_AUTH_TOKEN_PATH (owner-only)"
  fi
  if [ ! -s "$RAY_AUTH_TOKEN_PATH" ]; then
    echo "Ray token file $RAY_AUTH_TOKEN_PATH is empty: delete it to have one generated" >&2
    return 1 2>/dev/null || exit 1
  fi
  chmod 600 "$RAY_AUTH_TOKEN_PATH"
fi

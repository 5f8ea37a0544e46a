#!/usr/bin/env bash
# Runs the Python compatibility checks against a fresh actionsd: a venv in target/sdk-venv (reused)
# with requirements.txt (the official ZITADEL Python SDK zitadel-client, the Standard Webhooks
# library standardwebhooks, grpcio with grpcio-reflection, pinned), the already-built server binary
# on a free port with a temporary SQLite database, a generated admin token and
# ACTIONSD_HTTP_ALLOW_LIST=127.0.0.1 (so that targets may call the check's loopback receiver), then
# each check in CHECKS, one after the other:
#   sdk_targets.py         the SDK: targets and executions
#   webhook_signatures.py  target calls verify with standardwebhooks and the ZITADEL-Signature
#                          scheme, across signing-key rotations (with and without a grace period)
#   grpc_reflection_check.py
#                          gRPC over h2c with the official grpcio client: services and message
#                          classes from the server's reflection (v1alpha via grpcio-reflection, and
#                          v1), unary calls with the admin token, status codes and error details
#                          (before the fuzzer: it expects nothing bound to flow 2 / trigger 4)
#   contract_fuzz.py       schemathesis over the server's own OpenAPI document with the admin
#                          token: no 5xx, every response conforms to the document
#   proto_wire.py          proto/ compiles, and the messages shared with ZITADEL keep ZITADEL's
#                          field names, numbers and types (tests/fixtures/zitadel_wire.json)
#
# Usage: compat/python/run.sh [path/to/actionsd]   (default: target/debug/actionsd)
#
# The exit status is non-zero if any check failed. Whatever happens, the output contains one
# cargo-style line `test result: ... N passed; M failed; 0 ignored; ...` per check (.ci/run sums
# them in its summary); a failure before the checks could run (no python, pip cannot reach PyPI,
# the server does not start) counts as one failed test, a check that crashes or times out without
# its summary line as one failed test of that check.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
HERE=compat/python
VENV=${ACTIONSD_SDK_VENV:-target/sdk-venv}
BIN=${1:-target/debug/actionsd}
READY_TIMEOUT=60 # seconds for GET /debug/ready
CHECK_TIMEOUT=300 # seconds for each check
CHECKS=(sdk_targets.py webhook_signatures.py grpc_reflection_check.py contract_fuzz.py proto_wire.py)

setup_failed() {
  echo "python sdk: $*" >&2
  echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (python sdk: setup failed: $*)"
  exit 1
}

# --- the SDK, in its own venv -------------------------------------------------------------------

command -v python3 >/dev/null 2>&1 || setup_failed "python3 not found"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  setup_failed "zitadel-client needs Python >= 3.10, found $(python3 -V 2>&1)"

if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" || setup_failed "could not create a venv in $VENV (python3-venv needed)"
fi
PY=$ROOT/$VENV/bin/python
[[ $VENV == /* ]] && PY=$VENV/bin/python

# Pinned versions: when they are already installed pip does not go to the network. When it must
# and cannot (no PyPI), this fails: the check is never skipped silently.
if ! "$PY" -m pip install --quiet --disable-pip-version-check --retries 2 --timeout 30 \
  -r "$HERE/requirements.txt"; then
  setup_failed "pip install -r $HERE/requirements.txt failed (is PyPI reachable?)"
fi

# --- the server ---------------------------------------------------------------------------------

[[ $BIN == /* ]] || BIN=$ROOT/$BIN
[[ -x $BIN ]] || setup_failed "server binary $BIN not found (build it first: cargo build)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/actionsd-sdk.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

server_log_tail() {
  echo "--- last lines of the server log ($TMP/server.log):"
  tail -n 40 "$TMP/server.log" 2>/dev/null || true
  echo "---"
}

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
URL=http://127.0.0.1:$PORT

# In the temp dir, so that no .env file of the working directory changes the configuration.
(
  cd "$TMP"
  exec env \
    ACTIONSD_DATABASE_URL="sqlite://$TMP/sdk.db?mode=rwc" \
    ACTIONSD_ADDR="127.0.0.1:$PORT" \
    ACTIONSD_ADMIN_TOKEN="$TOKEN" \
    ACTIONSD_ADMIN_TOKEN_FILE="$TMP/admin.token" \
    ACTIONSD_HTTP_ALLOW_LIST=127.0.0.1 \
    ACTIONSD_LOG_FORMAT=text \
    RUST_LOG="${RUST_LOG:-info}" \
    NO_COLOR=1 \
    "$BIN" serve
) >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 $((READY_TIMEOUT * 5))); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    server_log_tail
    setup_failed "the server exited before it was ready"
  fi
  if "$PY" -c 'import sys, urllib.request
try:
    sys.exit(urllib.request.urlopen(sys.argv[1], timeout=2).status != 200)
except Exception:
    sys.exit(1)' "$URL/debug/ready" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
if ((!ready)); then
  server_log_tail
  setup_failed "the server did not answer GET /debug/ready within ${READY_TIMEOUT}s"
fi
echo "actionsd $("$BIN" --version 2>/dev/null | awk '{print $NF}') listening on $URL (database $TMP/sdk.db)"

# --- the checks ---------------------------------------------------------------------------------

status=0
for check in "${CHECKS[@]}"; do
  echo "--- $check"
  set +e
  ACTIONSD_URL=$URL ACTIONSD_TOKEN=$TOKEN timeout "$CHECK_TIMEOUT" "$PY" "$HERE/$check" | tee "$TMP/check.out"
  rc=${PIPESTATUS[0]}
  set -e
  if ((rc == 124)); then
    echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (python: $check timed out after ${CHECK_TIMEOUT}s)"
  elif ((rc != 0)) && ! grep -q '^test result:' "$TMP/check.out"; then
    echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (python: $check exited with status $rc)"
  fi
  if ((rc != 0)); then
    status=1
  fi
done
if ((status != 0)); then
  server_log_tail
fi
exit "$status"

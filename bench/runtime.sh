#!/usr/bin/env bash
# Runtime benchmarks (release build, loopback only):
#  (a) per-run cost of a typical Complement Token action, actionsd (Boa, fresh realm per run)
#      side by side with Node's vm module (fresh context per run);
#  (b) _execute with one and with five actions at 32 connections, side by side with a small Node
#      HTTP server running the same script in a fresh vm context per action;
#  (c) the cost the process isolation adds per run (worker process vs in-process).
# Env: DURATION (default 10s; whole seconds, e.g. 8s), ITERATIONS (default 3000).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
command -v node >/dev/null || { echo "node is required" >&2; exit 1; }
DURATION=${DURATION:-10s}
ITERATIONS=${ITERATIONS:-3000}
PORT=${PORT:-18090}
NODE_PORT=${NODE_PORT:-18091}
if [[ -z ${BIN:-} ]]; then # BIN=/path/to/actionsd runs a given binary (e.g. an older build, to compare)
  cargo build --release --quiet
  BIN=$PWD/target/release/actionsd
fi
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
BASE="http://127.0.0.1:$PORT"

echo "machine: $(nproc) cores, $(uname -sr), node $(node --version)"
echo
echo "## (a) + (c) per-run cost"
"$BIN" bench-runtime --iterations "$ITERATIONS"
node bench/node_vm.js "$ITERATIONS"
echo


(cd "$WORK" && RUST_LOG=warn ACTIONSD_ADDR="127.0.0.1:$PORT" ACTIONSD_ADMIN_TOKEN="$TOKEN" exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $TOKEN")
SCRIPT=$(python3 -c 'import json,sys; print(json.dumps(open("src/runtime/bench.rs").read().split("r#\"")[1].split("\"#")[0]))')
ids=()
for i in 1 2 3 4 5; do
  body=$(python3 -c "import json,sys; s=json.loads(sys.argv[1]); n='addClaims$i'; print(json.dumps({'name': n, 'script': s.replace('addClaims', n).replace(\"'tenant'\", \"'tenant$i'\").replace(\"'roles'\", \"'roles$i'\").replace(\"'year'\", \"'year$i'\")}))" "$SCRIPT")
  ids+=("$(curl -sf "$BASE/management/v1/actions" "${auth[@]}" -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
done
CONTEXT='{"context":{"claims":{"sub":"123"},"user":{"id":"123","username":"alice","human":{"firstName":"Alice"}}}}'
cat >"$WORK/execute.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$CONTEXT'
LUA

echo "## (b) _execute at 32 connections"
echo
echo "| server | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
for n in 1 5; do
  list=$(printf '"%s",' "${ids[@]:0:$n}")
  curl -sf "$BASE/management/v1/flows/2/trigger/4" "${auth[@]}" -d "{\"actionIds\":[${list%,}]}" >/dev/null
  # warm the workers
  wrk -t2 -c32 -d2s "${auth[@]}" -s "$WORK/execute.lua" "$BASE/management/v1/flows/2/trigger/4/_execute" >/dev/null
  cpu_per_run "$SERVER_PID" "$BASE" "${DURATION%s}" >"$WORK/cpu.$n" &
  wrk -t2 -c32 -d"$DURATION" --latency "${auth[@]}" -s "$WORK/execute.lua" "$BASE/management/v1/flows/2/trigger/4/_execute" | summary "actionsd, $n action(s)"
  wait $!
  node bench/node_vm.js --serve "$NODE_PORT" "$n" &
  NODE_PID=$!
  for _ in $(seq 1 50); do curl -sf -X POST "http://127.0.0.1:$NODE_PORT/execute" -d "$CONTEXT" >/dev/null && break; sleep 0.1; done
  wrk -t2 -c32 -d2s -s "$WORK/execute.lua" "http://127.0.0.1:$NODE_PORT/execute" >/dev/null
  wrk -t2 -c32 -d"$DURATION" --latency -s "$WORK/execute.lua" "http://127.0.0.1:$NODE_PORT/execute" | summary "node vm server, $n action(s)"
  kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
done
echo
echo "CPU per action run under that load (server and sandbox workers, from /proc and /metrics):"
for n in 1 5; do echo "- $n action(s): $(cat "$WORK/cpu.$n")"; done

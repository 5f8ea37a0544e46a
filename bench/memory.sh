#!/usr/bin/env bash
# Memory (release build, SQLite, loopback): the server's resident set (VmRSS of the server process,
# and of its sandbox workers together) at idle, over a long `_execute` run, and while a delivery
# backlog builds up and drains.
#  (a) idle: after start-up and 5 s without requests;
#  (b) `_execute` of the Complement Token action of src/runtime/bench.rs at 32 connections, in
#      rounds of ROUND seconds until CALLS calls have been made; RSS after each round;
#  (c) BACKLOG CreateActions with an event execution whose target refuses connections (every
#      delivery fails and stays queued), RSS once they are queued; then the target answers and
#      RSS once the queue is empty.
# Env: CALLS (default 1000000), ROUND (default 30s), BACKLOG (default 20000), BIN, PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
CALLS=${CALLS:-1000000}
ROUND=${ROUND:-30s}
BACKLOG=${BACKLOG:-20000}
PORT=${PORT:-18093}
SINK_PORT=${SINK_PORT:-18094}
if [[ -z ${BIN:-} ]]; then # BIN=/path/to/actionsd runs a given binary (e.g. an older build, to compare)
  cargo build --release --quiet
  BIN=$PWD/target/release/actionsd
fi
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
BASE="http://127.0.0.1:$PORT"
auth=(-H "Authorization: Bearer $TOKEN")

(cd "$WORK" && RUST_LOG=warn ACTIONSD_ADDR="127.0.0.1:$PORT" ACTIONSD_ADMIN_TOKEN="$TOKEN" \
  ACTIONSD_HTTP_ALLOW_LIST=127.0.0.1 ACTIONSD_DELIVERY_RETRY_SCHEDULE=1s \
  exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && break; sleep 0.1; done

# RSS in MiB of the server, and of its children (the sandbox workers) together.
rss() {
  local server workers=0 kb
  server=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status")
  for child in $(ps -o pid= --ppid "$SERVER" 2>/dev/null); do
    kb=$(awk '/^VmRSS/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)
    workers=$((workers + kb))
  done
  printf '%.1f MiB (workers %.1f MiB)' "$(echo "$server/1024" | bc -l)" "$(echo "$workers/1024" | bc -l)"
}

echo "machine: $(nproc) cores, $(uname -sr)"
echo
sleep 5
echo "## (a) idle: $(rss)"
echo

SCRIPT=$(python3 -c 'import json; print(json.dumps(open("src/runtime/bench.rs").read().split("r#\"")[1].split("\"#")[0]))')
id=$(curl -sf "$BASE/management/v1/actions" "${auth[@]}" -d "{\"name\":\"addClaims\",\"script\":$SCRIPT}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf "$BASE/management/v1/flows/2/trigger/4" "${auth[@]}" -d "{\"actionIds\":[\"$id\"]}" >/dev/null
cat >"$WORK/execute.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"context":{"claims":{"sub":"123"},"user":{"id":"123","username":"alice","human":{"firstName":"Alice"}}}}'
LUA
echo "## (b) _execute, 32 connections, rounds of $ROUND"
echo
echo "| calls so far | req/s in the round | server RSS |"
echo "|---|---|---|"
done_calls=0
while ((done_calls < CALLS)); do
  out=$(wrk -t2 -c32 -d"$ROUND" -s "$WORK/execute.lua" -H "Authorization: Bearer $TOKEN" \
    "$BASE/management/v1/flows/2/trigger/4/_execute")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  done_calls=$((done_calls + n))
  echo "| $done_calls | $rps | $(rss) |"
done
echo

echo "## (c) delivery backlog of $BACKLOG events"
echo
target=$(curl -sf "$BASE/v2/actions/targets" "${auth[@]}" \
  -d "{\"name\":\"sink\",\"endpoint\":\"http://127.0.0.1:$SINK_PORT/\",\"timeout\":\"5s\",\"restWebhook\":{}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf -X PUT "$BASE/v2/actions/executions" "${auth[@]}" \
  -d "{\"condition\":{\"event\":{\"event\":\"action.added\"}},\"targets\":[\"$target\"]}" >/dev/null
python3 - "$BASE" "$TOKEN" "$BACKLOG" <<'PY'
import concurrent.futures, json, sys, urllib.request
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def create(i):
    body = json.dumps({"name": f"backlog_{i}", "script": f"function backlog_{i}(ctx, api) {{}}"}).encode()
    req = urllib.request.Request(f"{base}/management/v1/actions", body,
                                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(create, range(n)))
PY
depth() { curl -sf "$BASE/metrics" | awk '/^actionsd_delivery_queue_depth/ {print $2}'; }
sleep 2
echo "- queued, target refusing: depth $(depth), $(rss)"
python3 - "$SINK_PORT" >/dev/null 2>&1 <<'PY' &
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
PIDS+=($!)
for _ in $(seq 1 600); do
  [[ "$(depth)" == "0" ]] && break
  sleep 1
done
echo "- drained: depth $(depth), $(rss)"

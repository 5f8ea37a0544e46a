#!/usr/bin/env bash
# The same RPCs over REST (HTTP/1.1 with wrk, and h2c with h2load) and over gRPC (h2c, h2load):
# GetAction at 64 connections and _execute (one Complement Token action) at 32, SQLite.
#   bash bench/grpc.sh            # BIN=/path/to/actionsd for a given binary; DURATION (10s)
# Needs wrk and h2load (Debian packages wrk and nghttp2-client). GetAction over HTTP/1.1 is also
# loaded by h2load (--h1), so that REST and gRPC are compared with one client. h2load reports the mean
# latency (no percentiles). Each load is first one stream per connection (-m 1), like wrk, then
# the same number of calls in flight multiplexed over 4 connections (-c 4 -m 16 / -m 8), the way
# gRPC clients use a channel (one HTTP/2 connection carrying many calls).
# Every row also gives the server's CPU time per call (the server process and its sandbox
# workers, from /proc): the load generator shares the machine's two cores, and gRPC costs it
# more than REST (it sends a DATA frame per call and parses trailers), so req/s alone also
# measures the client. ROUNDS (default 1) repeats the whole table.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load is required: apt-get install nghttp2-client" >&2; exit 1; }
DURATION=${DURATION:-10s}
SECONDS_RUN=${DURATION%s}
PORT=${PORT:-18095}
BASE="http://127.0.0.1:$PORT"
BIN=$(release_binary)
WORK=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
(cd "$WORK" && RUST_LOG=warn ACTIONSD_ADDR="127.0.0.1:$PORT" ACTIONSD_ADMIN_TOKEN="$TOKEN" exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $TOKEN")
SCRIPT=$(python3 -c 'import json,sys; print(json.dumps(open("src/runtime/bench.rs").read().split("r#\"")[1].split("\"#")[0]))')
ID=$(curl -sf "$BASE/management/v1/actions" "${auth[@]}" -d "{\"name\":\"addClaims\",\"script\":$SCRIPT}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf "$BASE/management/v1/flows/2/trigger/4" "${auth[@]}" -d "{\"actionIds\":[\"$ID\"]}" >/dev/null
CONTEXT='{"claims":{"sub":"123"},"user":{"id":"123","username":"alice","human":{"firstName":"Alice"}}}'

# The gRPC request bodies: one length-prefixed protobuf message each (hand-encoded: the
# messages are small and this keeps the script free of a protobuf toolchain).
python3 - "$WORK" "$ID" "$CONTEXT" <<'PY'
import json, struct, sys
work, action_id, context = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
def ld(field, payload): return varint(field << 3 | 2) + varint(len(payload)) + payload
def value(v):  # google.protobuf.Value
    if v is None: return varint(1 << 3) + varint(0)
    if isinstance(v, bool): return varint(4 << 3) + varint(int(v))
    if isinstance(v, (int, float)): return varint(2 << 3 | 1) + struct.pack('<d', float(v))
    if isinstance(v, str): return ld(3, v.encode())
    if isinstance(v, dict): return ld(5, struct_(v))
    return ld(6, b''.join(ld(1, value(x)) for x in v))
def struct_(d): return b''.join(ld(1, ld(1, k.encode()) + ld(2, value(v))) for k, v in d.items())
def frame(m): return b'\0' + struct.pack('>I', len(m)) + m
open(f'{work}/get.grpc', 'wb').write(frame(ld(1, action_id.encode())))
open(f'{work}/execute.grpc', 'wb').write(frame(ld(1, b'2') + ld(2, b'4') + ld(3, struct_(context))))
open(f'{work}/execute.json', 'w').write(json.dumps({"context": context}))
PY
cat >"$WORK/execute.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"context":$CONTEXT'.."}"
LUA

GRPC_GET="/zitadel.management.v1.ManagementService/GetAction"
GRPC_EXECUTE="/zitadel.management.v1.ManagementService/ExecuteFlowTrigger"
grpc_headers=(-H "content-type: application/grpc" -H "te: trailers" -H "authorization: Bearer $TOKEN")

# Each gRPC body is checked once before it is measured: status 0 and one answer message.
check_grpc() { # $1 = path, $2 = body file
  local out
  out=$(curl -s --http2-prior-knowledge -D - -o "$WORK/answer.bin" -X POST "${grpc_headers[@]}" \
    --data-binary "@$2" "$BASE$1")
  grep -qi '^grpc-status: 0' <<<"$out" || { echo "gRPC check of $1 failed:" >&2; echo "$out" >&2; exit 1; }
  [[ $(stat -c %s "$WORK/answer.bin") -gt 5 ]] || { echo "no answer message from $1" >&2; exit 1; }
}
check_grpc "$GRPC_GET" "$WORK/get.grpc"
check_grpc "$GRPC_EXECUTE" "$WORK/execute.grpc"

# CPU time (ms) used so far by the server and its sandbox workers.
cpu_ms() {
  local kids self
  read -r kids self <<<"$(cpu_ticks "$SERVER_PID")"
  echo $(((kids + self) * 1000 / $(getconf CLK_TCK)))
}

# Runs a load (the rest of the arguments) and prints one table row: label, req/s, latency, the
# server's CPU per call, failures.
measure() {
  local label=$1 tool=$2 out before after
  shift 2
  before=$(cpu_ms)
  out=$("$@")
  after=$(cpu_ms)
  awk -v label="$label" -v tool="$tool" -v cpu=$((after - before)) '
    tool == "wrk" && /Requests\/sec/ {rps=$2}
    tool == "wrk" && / requests in / {n=$1}
    tool == "wrk" && /^ +50%/ {p50=$2}
    tool == "wrk" && /^ +99%/ {p99=$2}
    tool == "wrk" && /Non-2xx/ {failed=$NF}
    tool == "h2load" && /^finished in/ {rps=$4}
    tool == "h2load" && /^requests:/ {n=$8; failed=$10 + $12}
    tool == "h2load" && /^time for request:/ {mean=$6}
    END {
      lat = (tool == "wrk") ? sprintf("p50 %s, p99 %s", p50, p99) : sprintf("mean %s", mean)
      printf "| %s | %s | %s | %.1f µs | %d |\n", label, rps, lat, (n > 0 ? cpu * 1000 / n : 0), failed
    }' <<<"$out"
}

auth_h2=(-H "Authorization: Bearer $TOKEN")
h2() { h2load -t2 -D "$SECONDS_RUN" "$@"; }
echo "machine: $(nproc) cores, $(uname -sr); $DURATION per figure, SQLite"
wrk -t2 -c64 -d2s "${auth[@]}" "$BASE/management/v1/actions/$ID" >/dev/null
wrk -t2 -c32 -d2s "${auth[@]}" -s "$WORK/execute.lua" "$BASE/management/v1/flows/2/trigger/4/_execute" >/dev/null
for round in $(seq 1 "${ROUNDS:-1}"); do
  echo
  echo "round $round"
  echo
  echo "| scenario | req/s | latency | server CPU per call | failed |"
  echo "|---|---|---|---|---|"
  measure "GetAction, REST over HTTP/1.1 (wrk), 64 conns" wrk \
    wrk -t2 -c64 -d"$DURATION" --latency "${auth[@]}" "$BASE/management/v1/actions/$ID"
  measure "GetAction, REST over HTTP/1.1 (h2load --h1), 64 conns" h2load \
    h2 --h1 -c64 -m1 "${auth_h2[@]}" "$BASE/management/v1/actions/$ID"
  measure "GetAction, REST over h2c (h2load), 64 conns" h2load \
    h2 -c64 -m1 "${auth_h2[@]}" "$BASE/management/v1/actions/$ID"
  measure "GetAction, gRPC over h2c (h2load), 64 conns" h2load \
    h2 -c64 -m1 "${grpc_headers[@]}" -d "$WORK/get.grpc" "$BASE$GRPC_GET"
  measure "GetAction, REST over h2c (h2load), 4 conns x 16 streams" h2load \
    h2 -c4 -m16 "${auth_h2[@]}" "$BASE/management/v1/actions/$ID"
  measure "GetAction, gRPC over h2c (h2load), 4 conns x 16 streams" h2load \
    h2 -c4 -m16 "${grpc_headers[@]}" -d "$WORK/get.grpc" "$BASE$GRPC_GET"
  measure "_execute, REST over HTTP/1.1 (wrk), 32 conns" wrk \
    wrk -t2 -c32 -d"$DURATION" --latency "${auth[@]}" -s "$WORK/execute.lua" "$BASE/management/v1/flows/2/trigger/4/_execute"
  measure "_execute, REST over h2c (h2load), 32 conns" h2load \
    h2 -c32 -m1 "${auth_h2[@]}" -H "content-type: application/json" -d "$WORK/execute.json" "$BASE/management/v1/flows/2/trigger/4/_execute"
  measure "_execute, gRPC over h2c (h2load), 32 conns" h2load \
    h2 -c32 -m1 "${grpc_headers[@]}" -d "$WORK/execute.grpc" "$BASE$GRPC_EXECUTE"
  measure "_execute, gRPC over h2c (h2load), 4 conns x 8 streams" h2load \
    h2 -c4 -m8 "${grpc_headers[@]}" -d "$WORK/execute.grpc" "$BASE$GRPC_EXECUTE"
done

#!/usr/bin/env bash
# GetAction over REST (HTTP/1.1, wrk, 64 connections) and over gRPC (h2load: one channel of 64
# streams, as gRPC clients connect, and 4 channels of 16), alternated against one server, with the
# server's CPU time per call for each load (the load generators differ: wrk runs two threads, h2load
# one per channel group, so req/s alone also measures the client).
#   bash bench/grpc_pair.sh            # BIN=/path/to/actionsd, ROUNDS (4), DURATION (6 seconds)
# Needs wrk and h2load (Debian packages wrk and nghttp2-client).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load is required: apt-get install nghttp2-client" >&2; exit 1; }
ROUNDS=${ROUNDS:-4}
SECS=${DURATION:-6}
PORT=${PORT:-18097}
BASE="http://127.0.0.1:$PORT"
BIN=$(release_binary)
WORK=$(mktemp -d)
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
(cd "$WORK" && RUST_LOG=warn ACTIONSD_ADDR="127.0.0.1:$PORT" ACTIONSD_ADMIN_TOKEN="$TOKEN" exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && break; sleep 0.1; done
ID=$(curl -sf "$BASE/management/v1/actions" -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"addClaims","script":"function addClaims(ctx, api) { api.v1.claims.setClaim(\"a\", 1) }"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# One length-prefixed GetActionRequest {id} (field 1, a string).
python3 -c 'import struct, sys; i = sys.argv[1].encode(); m = bytes([10, len(i)]) + i
open(sys.argv[2], "wb").write(b"\0" + struct.pack(">I", len(m)) + m)' "$ID" "$WORK/get.grpc"
grpc=(-H "content-type: application/grpc" -H "te: trailers" -H "authorization: Bearer $TOKEN"
  -d "$WORK/get.grpc" "$BASE/zitadel.management.v1.ManagementService/GetAction")
rest=(-H "Authorization: Bearer $TOKEN" "$BASE/management/v1/actions/$ID")
cpu() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
# µs of server CPU per call: ticks before, after, calls.
per_call() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}'; }
wrk -t2 -c64 -d2s "${rest[@]}" >/dev/null
h2load -t1 -D 2 -c1 -m64 "${grpc[@]}" >/dev/null
echo "machine: $(nproc) cores; ${SECS} s per load; req/s (server CPU per call)"
for round in $(seq 1 "$ROUNDS"); do
  a=$(cpu); out=$(wrk -t2 -c64 -d"${SECS}s" "${rest[@]}"); b=$(cpu)
  r_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); r_cpu=$(per_call "$a" "$b" "$(awk '/ requests in / {print $1}' <<<"$out")")
  a=$(cpu); out=$(h2load -t1 -D "$SECS" -c1 -m64 "${grpc[@]}"); b=$(cpu)
  g1_rps=$(awk '/^finished in/ {print $4}' <<<"$out"); g1_cpu=$(per_call "$a" "$b" "$(awk '/^requests:/ {print $8}' <<<"$out")")
  a=$(cpu); out=$(h2load -t2 -D "$SECS" -c4 -m16 "${grpc[@]}"); b=$(cpu)
  g4_rps=$(awk '/^finished in/ {print $4}' <<<"$out"); g4_cpu=$(per_call "$a" "$b" "$(awk '/^requests:/ {print $8}' <<<"$out")")
  echo "round $round: REST HTTP/1.1 $r_rps ($r_cpu µs) | gRPC 1x64 $g1_rps ($g1_cpu µs) | gRPC 4x16 $g4_rps ($g4_cpu µs)"
done

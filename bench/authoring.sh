#!/usr/bin/env bash
# What the authoring features cost `_execute` (release build, SQLite, loopback): one Complement
# Token action (the script of src/runtime/bench.rs) at 32 connections, in rounds on one server:
#   baseline      no secrets, recording off, no tail
#   secrets       the organization has 10 secrets (40 characters each), sent with every run
#   recording     recordContexts on (every call's context stored, redacted)
#   10 tails      10 clients tailing the organization's runs (curl -N), twice
# Every scenario round sits between two baseline rounds and is compared with their mean (the
# database grows during the run, so rounds far apart are not comparable).
# Env: DURATION (default 10s), BIN (a given binary).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
DURATION=${DURATION:-10s}
PORT=${PORT:-18095}
BASE="http://127.0.0.1:$PORT"
BIN=$(release_binary)
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
auth=(-H "Authorization: Bearer $TOKEN")

(cd "$WORK" && RUST_LOG=warn ACTIONSD_DATABASE_URL="sqlite://$WORK/bench.db?mode=rwc" ACTIONSD_ADDR="127.0.0.1:$PORT" \
  ACTIONSD_ADMIN_TOKEN="$TOKEN" ACTIONSD_ENCRYPTION_KEY=bench-key-0123456789 exec "$BIN" serve >"$WORK/server.log" 2>&1) &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && break; sleep 0.1; done

SCRIPT=$(python3 -c 'import json; print(json.dumps(open("src/runtime/bench.rs").read().split("r#\"")[1].split("\"#")[0]))')
id=$(curl -sf "$BASE/management/v1/actions" "${auth[@]}" -d "{\"name\":\"addClaims\",\"script\":$SCRIPT}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf "$BASE/management/v1/flows/2/trigger/4" "${auth[@]}" -d "{\"actionIds\":[\"$id\"]}" >/dev/null
cat >"$WORK/execute.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"context":{"claims":{"sub":"123"},"accessToken":"at-123","user":{"id":"123","username":"alice","human":{"firstName":"Alice"}}}}'
LUA
URL="$BASE/management/v1/flows/2/trigger/4/_execute"
wrk -t2 -c32 -d3s "${auth[@]}" -s "$WORK/execute.lua" "$URL" >/dev/null # warm the workers

round() { # $1 = label
  wrk -t2 -c32 -d"$DURATION" --latency "${auth[@]}" -s "$WORK/execute.lua" "$URL" >"$WORK/wrk.txt"
  summary "$1" <"$WORK/wrk.txt" | tee -a "$WORK/rows"
  grep -h "Socket errors" "$WORK/wrk.txt" >&2 || true
}

echo "machine: $(nproc) cores, $(uname -sr)"
echo
echo "| scenario | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
round "baseline"
for i in $(seq 1 10); do
  curl -sf -X PUT "$BASE/management/v1/actions/secrets/SECRET_$i" "${auth[@]}" \
    -d "{\"value\":\"$(head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)\"}" >/dev/null
done
round "10 secrets"
for i in $(seq 1 10); do curl -sf -X DELETE "$BASE/management/v1/actions/secrets/SECRET_$i" "${auth[@]}" >/dev/null; done
round "baseline"
curl -sf -X PUT "$BASE/management/v1/actions/_settings" "${auth[@]}" -d '{"recordContexts":true}' >/dev/null
round "recording contexts"
curl -sf -X PUT "$BASE/management/v1/actions/_settings" "${auth[@]}" -d '{"recordContexts":false}' >/dev/null
round "baseline"
cpu_of_tails() { # CPU seconds the curl readers used so far (utime + stime)
  local ticks=0 p
  for p in "${TAILS[@]}"; do
    [[ -r /proc/$p/stat ]] && ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "scale=2; $ticks / $(getconf CLK_TCK)" | bc
}
tailed=0
tail_cpu=0
for pass in 1 2; do
  TAILS=()
  for i in $(seq 1 10); do
    curl -sN "$BASE/management/v1/runs/_tail" "${auth[@]}" >"$WORK/tail-$pass-$i.txt" &
    TAILS+=($!)
    PIDS+=($!)
  done
  sleep 1
  before=$(cpu_of_tails)
  round "10 tails listening"
  after=$(cpu_of_tails)
  tail_cpu=$(echo "$tail_cpu + $after - $before" | bc)
  kill "${TAILS[@]}" 2>/dev/null || true
  wait "${TAILS[@]}" 2>/dev/null || true
  tailed=$((tailed + $(cat "$WORK"/tail-$pass-*.txt | grep -c '^event: run' || true)))
  round "baseline"
done
echo
echo "events received by the tails: $tailed; the curl readers (on the same 2 cores) used $tail_cpu CPU-seconds during their rounds"
awk -F'|' '
  {label[NR] = $2; rps[NR] = $3}
  END {
    for (i = 2; i < NR; i += 2) {
      mean = (rps[i - 1] + rps[i + 1]) / 2
      printf "%s: %+.1f %% (against the baselines around it, %.0f req/s)\n", label[i], (rps[i] / mean - 1) * 100, mean
    }
  }' "$WORK/rows"

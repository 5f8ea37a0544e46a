#!/usr/bin/env bash
# A/B of two builds on `_execute` (release binaries, SQLite, loopback): both servers run at the
# same time with the same actions (the script of src/runtime/bench.rs), and wrk alternates
# between them round by round, so that the machine's drift hits both alike.
#   bash bench/ab_execute.sh /path/to/actionsd-A /path/to/actionsd-B
# Env: ROUNDS (per binary and action count, default 4), DURATION (default 8s), CONNS (default 32;
# 1 shows the latency of a lone caller), ACTIONS (action counts, default "1 5").
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
A=${1:?usage: ab_execute.sh BIN_A BIN_B}
B=${2:?usage: ab_execute.sh BIN_A BIN_B}
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-32}
ACTIONS=${ACTIONS:-1 5}
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
auth=(-H "Authorization: Bearer $TOKEN")
SCRIPT=$(python3 -c 'import json; print(json.dumps(open("src/runtime/bench.rs").read().split("r#\"")[1].split("\"#")[0]))')

start() { # $1 = name, $2 = binary, $3 = port
  mkdir -p "$WORK/$1"
  (cd "$WORK/$1" && RUST_LOG=warn ACTIONSD_DATABASE_URL="sqlite://$WORK/$1/db?mode=rwc" ACTIONSD_ADDR="127.0.0.1:$3" \
    ACTIONSD_ADMIN_TOKEN="$TOKEN" ACTIONSD_ENCRYPTION_KEY=bench-key-0123456789 exec "$2" serve >"$WORK/$1/log" 2>&1) &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$3/debug/ready" >/dev/null && break; sleep 0.1; done
  local ids=() i body
  for i in 1 2 3 4 5; do
    body=$(python3 -c "import json,sys; s=json.loads(sys.argv[1]); n='addClaims$i'; print(json.dumps({'name': n, 'script': s.replace('addClaims', n).replace(\"'roles'\", \"'roles$i'\")}))" "$SCRIPT")
    ids+=("$(curl -sf "http://127.0.0.1:$3/management/v1/actions" "${auth[@]}" -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
  done
  printf '%s\n' "${ids[@]}" >"$WORK/$1/ids"
}

bind() { # $1 = name, $2 = port, $3 = how many actions
  local list
  list=$(head -n "$3" "$WORK/$1/ids" | sed 's/.*/"&"/' | paste -sd,)
  curl -sf "http://127.0.0.1:$2/management/v1/flows/2/trigger/4" "${auth[@]}" -d "{\"actionIds\":[$list]}" >/dev/null
}

start a "$A" 18101
start b "$B" 18102
cat >"$WORK/execute.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"context":{"claims":{"sub":"123"},"user":{"id":"123","username":"alice","human":{"firstName":"Alice"}}}}'
LUA
echo "A = $A"
echo "B = $B"
for n in $ACTIONS; do
  bind a 18101 "$n"
  bind b 18102 "$n"
  for port in 18101 18102; do # warm the workers
    wrk -t2 -c32 -d2s "${auth[@]}" -s "$WORK/execute.lua" "http://127.0.0.1:$port/management/v1/flows/2/trigger/4/_execute" >/dev/null
  done
  echo
  echo "### $n action(s), $CONNS connection(s)"
  echo
  echo "| round | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|"
  for r in $(seq 1 "$ROUNDS"); do
    for side in a b; do
      port=$([[ $side == a ]] && echo 18101 || echo 18102)
      wrk -t"$(( CONNS < 2 ? 1 : 2 ))" -c"$CONNS" -d"$DURATION" --latency "${auth[@]}" -s "$WORK/execute.lua" \
        "http://127.0.0.1:$port/management/v1/flows/2/trigger/4/_execute" | summary "${side^^} $r" | tee -a "$WORK/rows-$n"
    done
  done
  awk -F'|' '{side = substr($2, 2, 1); sum[side] += $3; cnt[side]++}
    END {printf "\nmean: A %.0f req/s, B %.0f req/s, B/A %+.1f %%\n", sum["A"] / cnt["A"], sum["B"] / cnt["B"], (sum["B"] / cnt["B"]) / (sum["A"] / cnt["A"]) * 100 - 100}' "$WORK/rows-$n"
done

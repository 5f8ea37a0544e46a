#!/usr/bin/env bash
# Load benchmark of the management API on loopback with wrk (Debian package `wrk`).
#   bash bench/run.sh                 # SQLite and, if reachable, PostgreSQL
#   BACKENDS=sqlite bash bench/run.sh
#   BIN=/path/to/actionsd bash bench/run.sh   # a given binary (e.g. an older build, to compare)
# Env: DURATION (default 10s), PG_URL (default postgres://postgres@127.0.0.1:5432/test),
#      SCENARIOS (default "get create list": a subset runs only those).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
DURATION=${DURATION:-10s}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
BACKENDS=${BACKENDS:-sqlite postgres}
SCENARIOS=${SCENARIOS:-get create list}
wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }
PORT=${PORT:-18080}
BASE="http://127.0.0.1:$PORT"
BIN=$(release_binary)
WORK=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

start_server() { # $1 = database url
  (cd "$WORK" && RUST_LOG=warn ACTIONSD_DATABASE_URL="$1" ACTIONSD_ADDR="127.0.0.1:$PORT" \
    ACTIONSD_ADMIN_TOKEN="$TOKEN" ACTIONSD_ENCRYPTION_KEY=bench-key-0123456789 exec "$BIN" serve >"$WORK/server.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && return 0; sleep 0.1; done
  echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }


run_backend() { # $1 = name, $2 = url, $3 = connections for CreateAction
  start_server "$2"
  local auth="Authorization: Bearer $TOKEN"
  local org
  org=$(curl -sf -X POST "$BASE/management/v1/orgs" -H "$auth" -d "{\"name\":\"bench-$(date +%s%N)\"}" | json_field '["id"]')
  local oauth=(-H "$auth" -H "x-zitadel-orgid: $org")
  local id
  id=$(curl -sf "$BASE/management/v1/actions" "${oauth[@]}" -d '{"name":"probe","script":"function probe(ctx, api) {}"}' | json_field '["id"]')
  # 10,000 short actions in the org for ListActions.
  python3 - "$BASE" "$TOKEN" "$org" <<'PY'
import json, sys, urllib.request, concurrent.futures
base, token, org = sys.argv[1:4]
def create(i):
    body = json.dumps({"name": f"action_{i}", "script": f"function action_{i}(ctx, api) {{}}"}).encode()
    req = urllib.request.Request(base + "/management/v1/actions", data=body, method="POST",
        headers={"Authorization": "Bearer " + token, "x-zitadel-orgid": org, "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(create, range(10000)))
PY
  # The table as autovacuum leaves it a minute after a burst of inserts (since PostgreSQL 13 an
  # insert burst triggers a vacuum as well as an analyze): right after the bulk insert, the planner
  # still believes the table is nearly empty, and no page is marked all-visible, so an index-only
  # scan would visit the heap for every row and the planner scans the whole table instead.
  settle() { if [[ $1 == PostgreSQL ]]; then psql "$PG_URL" -qc "VACUUM ANALYZE $schema.actions" >/dev/null; fi; }
  settle "$1"
  echo "### $1"
  echo
  echo "| scenario | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|"
  if wants get; then
    wrk -t2 -c64 -d"$DURATION" --latency "${oauth[@]}" "$BASE/management/v1/actions/$id" | summary "GetAction, 64 connections"
  fi
  if wants create; then
    # Into an organization of its own, so that the list below still reads an org of 10,000 actions.
    local create_org
    create_org=$(curl -sf -X POST "$BASE/management/v1/orgs" -H "$auth" -d "{\"name\":\"bench-create-$(date +%s%N)\"}" | json_field '["id"]')
    wrk -t2 -c"$3" -d"$DURATION" --latency -H "$auth" -H "x-zitadel-orgid: $create_org" -s bench/create.lua "$BASE/management/v1/actions" | summary "CreateAction, $3 connections"
  fi
  if wants list; then
    # After the write load, the same settling (else the list reads a table of 10,000 + the write
    # load's rows with a sequential scan: p99 36-38 ms instead of 22-28 ms on 2026-12-07).
    if wants create; then settle "$1"; fi
    wrk -t2 -c8 -d"$DURATION" --latency "${oauth[@]}" -s bench/list.lua "$BASE/management/v1/actions/_search" | summary "ListActions (10k actions, limit 100, contains), 8 connections"
  fi
  echo
  stop_server
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
echo
for b in $BACKENDS; do
  case $b in
    sqlite) run_backend SQLite "sqlite://$WORK/bench.db?mode=rwc" 64 ;;
    postgres)
      schema="bench_$(date +%s)"
      psql "$PG_URL" -qc "CREATE SCHEMA $schema" >/dev/null
      run_backend PostgreSQL "$PG_URL?options=-c%20search_path%3D$schema" 32
      psql "$PG_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 ;;
  esac
done

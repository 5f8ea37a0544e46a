#!/usr/bin/env bash
# Actions v2 benchmarks (release build, loopback only), on SQLite and on PostgreSQL:
#  (a) delivery throughput: EVENTS events committed in one transaction, time from the commit to the
#      last 2xx at a local receiver (an event execution with one target);
#  (b) commit → 2xx latency at low load (one event per commit, 20 ms apart), p50/p99;
#  (c) what one restWebhook request execution adds to CreateAction (the receiver answers at once).
# Everything runs in one process (`actionsd bench-delivery`: server, queue worker and receiver).
# Env: EVENTS (10000), LATENCY_EVENTS (300), REQUESTS (2000),
#      PG_URL (postgres://postgres@127.0.0.1:5432) — a database bench_v2 is (re)created there.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-10000}
LATENCY_EVENTS=${LATENCY_EVENTS:-300}
REQUESTS=${REQUESTS:-2000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
if [[ -z ${BIN:-} ]]; then # BIN=/path/to/actionsd runs a given binary (e.g. an older build, to compare)
  cargo build --release --quiet
  BIN=$PWD/target/release/actionsd
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
args=(bench-delivery --events "$EVENTS" --latency-events "$LATENCY_EVENTS" --requests "$REQUESTS")

echo "machine: $(nproc) cores, $(uname -sr)"
echo
echo "## SQLite"
(cd "$WORK" && RUST_LOG=warn ACTIONSD_DATABASE_URL="sqlite://$WORK/bench.db?mode=rwc" "$BIN" "${args[@]}")
echo
echo "## PostgreSQL"
psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS bench_v2" >/dev/null 2>&1 || true
psql "$PG_URL/postgres" -qc "CREATE DATABASE bench_v2"
(cd "$WORK" && RUST_LOG=warn ACTIONSD_ENCRYPTION_KEY=bench-only-key-0123456789 \
  ACTIONSD_DATABASE_URL="$PG_URL/bench_v2" "$BIN" "${args[@]}")
psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS bench_v2" >/dev/null 2>&1 || true

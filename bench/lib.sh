# Shared by the benchmark scripts.

# The server binary to measure: $BIN when given, else a release build of this checkout.
release_binary() {
  if [[ -n ${BIN:-} ]]; then
    echo "$BIN"
  else
    cargo build --release --quiet >&2
    echo "$PWD/target/release/actionsd"
  fi
}

# Turns `wrk --latency` output (stdin) into one Markdown table row: label, req/s, p50, p99, non-2xx.
summary() {
  awk -v label="$1" '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2}
    /^ +99%/ {p99=$2}
    /Non-2xx/ {errors=$NF}
    END {printf "| %s | %s | %s | %s | %s |\n", label, rps, p50, p99, (errors==""?0:errors)}'
}

# CPU time (clock ticks) of a process's children and of the process itself: "children self".
cpu_ticks() {
  local kids=0 p f
  for p in $(pgrep -P "$1" || true); do
    f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<<"$f"
    kids=$((kids + f[11] + f[12]))
  done
  f=$(sed 's/.*) //' "/proc/$1/stat")
  read -r -a f <<<"$f"
  echo "$kids $((f[11] + f[12]))"
}

# Action runs finished so far by the server at $1 (base URL), from /metrics.
runs_done() {
  curl -sf "$1/metrics" | awk '/^actionsd_action_run_duration_seconds_count/ {s += $2} END {print s + 0}'
}

# While a load of $3 seconds runs, measures the CPU per action run of the server $1 (pid, base
# URL $2) and of its sandbox workers, between the load's second 1 and its last second (the
# workers of runs cancelled when the load ends are killed, and their CPU with them). Prints
# "worker µs, server µs" per run.
cpu_per_run() {
  local pid=$1 base=$2 secs=$3 w0 s0 w1 s1 r0 r1 hz
  hz=$(getconf CLK_TCK)
  sleep 1
  read -r w0 s0 <<<"$(cpu_ticks "$pid")"; r0=$(runs_done "$base")
  sleep $((secs > 3 ? secs - 2 : 1))
  read -r w1 s1 <<<"$(cpu_ticks "$pid")"; r1=$(runs_done "$base")
  awk -v w=$((w1 - w0)) -v s=$((s1 - s0)) -v n=$((r1 - r0)) -v hz="$hz" \
    'BEGIN {if (n > 0) printf "%.0f µs in the workers, %.0f µs in the server (%d runs)\n", w * 1e6 / hz / n, s * 1e6 / hz / n, n}'
}

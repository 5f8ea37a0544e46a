# Shared by the benchmark scripts.

# Turns `wrk --latency` output (stdin) into one Markdown table row: label, req/s, p50, p99, non-2xx.
summary() {
  awk -v label="$1" '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2}
    /^ +99%/ {p99=$2}
    /Non-2xx/ {errors=$NF}
    END {printf "| %s | %s | %s | %s | %s |\n", label, rps, p50, p99, (errors==""?0:errors)}'
}

#!/usr/bin/env bash
# Cache hits with a new connection for every request: wrk sends `Connection: close`, so each
# request pays for a TCP handshake, the server's accept and the close. compare.sh keeps its
# connections open for the whole run and so never measures how a server takes new ones.
#
#   bench/edge/new-connections.sh NAME=URL[@HOST] ...
#
# URL is a base URL, each path is appended to it; @HOST is sent as the Host header. Rounds
# rotate the order of the targets, and each run waits until the machine is quiet. Environment
# (default): REPS (3), DURATION in seconds (6), CONNS (32), THREADS (2), PATHS ("/1k.bin"),
# BUSY_MAX_CORES (0.2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-6}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PATHS=${PATHS:-/1k.bin}
read -ra PATH_LIST <<< "$PATHS"
[[ $# -gt 0 ]] || { echo "usage: new-connections.sh NAME=URL[@HOST] ..." >&2; exit 2; }

# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"
parse_targets "$@"
RESULTS=$(mktemp /tmp/new-connections.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT
fill_caches

# Prints "rate p50 p99 errors" for one run, from wrk's --latency output, latencies in milliseconds.
closing_run() {
  local i=$1 path=$2
  wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --latency -H "Connection: close" \
    ${HOSTS[$i]:+-H "Host: ${HOSTS[$i]}"} "${URLS[$i]}$path" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rate = $2 }
    /Socket errors:/ { for (i = 4; i <= NF; i += 2) { v = $i; sub(/,$/, "", v); errors += v } }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    END { printf "%s %.3f %.3f %d\n", rate, p50, p99, errors }'
}
run_rounds closing_run

echo "## cache hits on a new connection each: $CONNS connections, $REPS rounds of $DURATION s"
echo
echo "| path | target | req/s, median | p50 | p99 | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for path in "${PATH_LIST[@]}"; do
  for name in "${NAMES[@]}"; do
    awk -v p="$path" -v n="$name" "$AWK_TABLE_FUNCTIONS"'
      $1 == p && $2 == n { m++; rps[m] = $3; p50[m] = $4; p99[m] = $5; err += $6 }
      END { if (m) printf "| %s | %s | %s | %.2f ms | %.2f ms | %d |\n", p, n, grouped(median(rps, m)),
        median(p50, m), median(p99, m), err }' "$RESULTS"
  done
done
echo
echo "Percentiles are medians over the rounds of each round's percentile."

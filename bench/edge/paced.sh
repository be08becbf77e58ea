#!/usr/bin/env bash
# Latency at the same offered load for every target, below saturation. compare.sh drives each
# target as hard as it goes, so its p99 there also measures how the load generator, sharing the
# machine's cores, is scheduled against the target. Here each wrk connection waits PACE_MS after
# every response, so each target serves about the same request rate and the percentiles show
# the target's own delay.
#
#   bench/edge/paced.sh NAME=URL[@HOST] ...
#
# URL is a base URL, each path is appended to it; @HOST is sent as the Host header. Rounds
# rotate the order of the targets, and each run waits until the machine is quiet. Environment
# (default): REPS (3), DURATION in seconds (6), CONNS (64), THREADS (2), PACE_MS (1),
# PATHS ("/1k.bin /10k.bin"), BUSY_MAX_CORES (0.2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-6}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
PACE_MS=${PACE_MS:-1}
PATHS=${PATHS:-/1k.bin /10k.bin}
read -ra PATH_LIST <<< "$PATHS"
[[ $# -gt 0 ]] || { echo "usage: paced.sh NAME=URL[@HOST] ..." >&2; exit 2; }

# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"
parse_targets "$@"
RESULTS=$(mktemp /tmp/paced.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT
fill_caches

paced_run() {
  local i=$1 path=$2 line
  line=$(HOST_HEADER=${HOSTS[$i]} PACE_MS=$PACE_MS wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" \
    -s "$ROOT/bench/edge/paced.lua" "${URLS[$i]}$path" | grep '^PACED ')
  echo "${line#PACED }"
}
run_rounds paced_run

echo "## paced latency: $CONNS connections, each waiting $PACE_MS ms between requests, $REPS rounds of $DURATION s"
echo
echo "| path | target | req/s, median | p50 | p90 | p99 | p99.9 | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for path in "${PATH_LIST[@]}"; do
  for name in "${NAMES[@]}"; do
    awk -v p="$path" -v n="$name" "$AWK_TABLE_FUNCTIONS"'
      $1 == p && $2 == n { m++; rps[m] = $3 / ($4 / 1e6); p50[m] = $5; p90[m] = $6; p99[m] = $7; p999[m] = $8; err += $9 }
      END { if (m) printf "| %s | %s | %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d |\n", p, n, grouped(median(rps, m)),
        median(p50, m) / 1000, median(p90, m) / 1000, median(p99, m) / 1000, median(p999, m) / 1000, err }' "$RESULTS"
  done
done
echo
echo "Percentiles are medians over the rounds of each round's percentile."
# Each round with errors, by kind, so that a count in the table can be traced.
awk '$9 > 0 { printf "Errors, %s %s: connect %d, read %d, write %d, status %d, timeout %d\n", $2, $1, $10, $11, $12, $13, $14 }' "$RESULTS"

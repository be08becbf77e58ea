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

NAMES=() URLS=() HOSTS=()
for target in "$@"; do
  name=${target%%=*} rest=${target#*=}
  NAMES+=("$name")
  if [[ $rest == *@* ]]; then URLS+=("${rest%@*}") HOSTS+=("${rest##*@}"); else URLS+=("$rest") HOSTS+=(""); fi
done

RESULTS=$(mktemp /tmp/paced.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT

# Fill every cache before measuring.
for i in "${!NAMES[@]}"; do
  for path in "${PATH_LIST[@]}"; do
    for _ in 1 2 3; do
      curl -sk -o /dev/null ${HOSTS[$i]:+-H "Host: ${HOSTS[$i]}"} "${URLS[$i]}$path" || true
    done
  done
done

# Cores in use by all processes over the next second, from /proc/stat.
cores_in_use() {
  local before after
  before=$(head -1 /proc/stat)
  sleep 1
  after=$(head -1 /proc/stat)
  awk -v cpus="$(nproc)" -v b="$before" -v a="$after" 'BEGIN {
    split(b, x); split(a, y); busy = 0; all = 0
    for (i = 2; i <= 9; i++) { d = y[i] - x[i]; all += d; if (i != 5 && i != 6) busy += d }
    printf "%.2f", (all > 0 ? cpus * busy / all : 0) }'
}

# Before each run, waits up to 30 s for the other processes to use at most BUSY_MAX_CORES (0.2).
wait_until_quiet() {
  local waited=0
  while awk -v c="$(cores_in_use)" -v max="${BUSY_MAX_CORES:-0.2}" 'BEGIN { exit !(c > max) }'; do
    waited=$((waited + 1))
    if [[ $waited -ge 30 ]]; then echo "paced: the machine is still busy after 30 s, running anyway" >&2; return; fi
  done
}

count=${#NAMES[@]}
for path in "${PATH_LIST[@]}"; do
  for round in $(seq 1 "$REPS"); do
    for k in $(seq 0 $((count - 1))); do
      i=$(( (k + round - 1) % count ))
      wait_until_quiet
      echo "paced: ${NAMES[$i]} $path round $round" >&2
      line=$(HOST_HEADER=${HOSTS[$i]} PACE_MS=$PACE_MS wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" \
        -s "$ROOT/bench/edge/paced.lua" "${URLS[$i]}$path" | grep '^PACED ')
      echo "$path ${NAMES[$i]} ${line#PACED }" >> "$RESULTS"
    done
  done
done

echo "## paced latency: $CONNS connections, each waiting $PACE_MS ms between requests, $REPS rounds of $DURATION s"
echo
echo "| path | target | req/s, median | p50 | p90 | p99 | p99.9 | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for path in "${PATH_LIST[@]}"; do
  for name in "${NAMES[@]}"; do
    awk -v p="$path" -v n="$name" '
      function median(a, m,   t, i, j) { for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
      $1 == p && $2 == n { m++; rps[m] = $3 / ($4 / 1e6); p50[m] = $5; p90[m] = $6; p99[m] = $7; p999[m] = $8; err += $9 }
      function grouped(x,   s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
      END { if (m) printf "| %s | %s | %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d |\n", p, n, grouped(median(rps, m)),
        median(p50, m) / 1000, median(p90, m) / 1000, median(p99, m) / 1000, median(p999, m) / 1000, err }' "$RESULTS"
  done
done
echo
echo "Percentiles are medians over the rounds of each round's percentile."

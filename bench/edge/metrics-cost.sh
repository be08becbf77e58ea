#!/usr/bin/env bash
# Measures what recording metrics costs on the hit path: two single-process edges, one that
# drops request records and one that feeds the CloudWatch aggregator, loaded in turn with the
# same wrk settings; prints req/s and p99 per round and the median ratio.
#
#   bench/edge/metrics-cost.sh [PATH] [ROUNDS] [SECONDS]     # default /1k.bin, 5 rounds of 8 s
#
# The peers must be running (../shared/bench/peers.sh start).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
OBJECT=${1:-/1k.bin}
ROUNDS=${2:-5}
DURATION=${3:-8}
eval "$("$SHARED_BENCH/peers.sh" env)"
cd "$ROOT"
# hit-server.ts runs the built code; SKIP_BUILD=1 reuses dist/ as it is.
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start() { # SINK PORT
  SINK=$1 PORT=$2 ORIGIN_PORT="${ORIGIN_URL##*:}" node --import tsx bench/edge/hit-server.ts >"/tmp/portico-hit-$1.out" 2>&1 &
  PIDS+=($!)
}
start null 8096
start metrics 8097
for _ in $(seq 1 100); do
  [[ -s /tmp/portico-hit-null.out && -s /tmp/portico-hit-metrics.out ]] && break
  sleep 0.2
done
HOST=$(head -1 /tmp/portico-hit-null.out)
for port in 8096 8097; do curl -fsS -o /dev/null -H "Host: $HOST" "http://127.0.0.1:$port$OBJECT"; done

run() { # PORT -> "req/s p99_ms"
  wrk -t2 -c64 -d"${DURATION}s" --latency -H "Host: $HOST" "http://127.0.0.1:$1$OBJECT" |
    awk '/Requests\/sec/ { rps = $2 } /^ +99%/ { p = $2; if (p ~ /us$/) v = p / 1000; else if (p ~ /ms$/) v = p + 0; else v = p * 1000 } END { printf "%s %.2f\n", rps, v }'
}
echo "| round | no metrics req/s | p99 ms | metrics req/s | p99 ms | ratio |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then a=$(run 8096); b=$(run 8097); else b=$(run 8097); a=$(run 8096); fi
  ratio=$(awk -v a="${a% *}" -v b="${b% *}" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$ratio")
  echo "| $round | ${a% *} | ${a#* } | ${b% *} | ${b#* } | $ratio |"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "median ratio (metrics / none): %s\n", r[int((NR + 1) / 2)] }'

#!/usr/bin/env bash
# Measures the CPU time each 1 KiB hit costs the serving process: one edge process
# (hit-server.ts, records dropped) against the raw node:net ceiling that writes one
# preallocated response per request (../shared/bench/limit/raw-net-server.js). Each round loads
# both in turn with wrk and divides the process's CPU time (user + system, all threads, from
# /proc/<pid>/stat) by the requests served. CPU time per request moves much less with other
# load on the machine than requests per second do.
#
#   bench/edge/cpu-per-request.sh [ROUNDS] [SECONDS]     # default 5 rounds of 5 s
#
# The peers must be running (../shared/bench/peers.sh start). Ports 8096 and 8097.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
ROUNDS=${1:-5}
DURATION=${2:-5}
HOST=dbenchhitserver.portico.localhost
eval "$("$SHARED_BENCH/peers.sh" env)"
cd "$ROOT"
# hit-server.ts runs the built code; SKIP_BUILD=1 reuses dist/ as it is.
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

SINK=null PORT=8096 ORIGIN_PORT=${ORIGIN_URL##*:} node --import tsx bench/edge/hit-server.ts >/dev/null 2>&1 &
PIDS+=($!)
EDGE_PID=$!
PORT=8097 SIZE=1024 WORKERS=1 node "$SHARED_BENCH/limit/raw-net-server.js" &
PIDS+=($!)
RAW_PID=$!
for _ in $(seq 1 50); do
  if curl -fs -o /dev/null -H "Host: $HOST" http://127.0.0.1:8096/1k.bin; then break; fi
  sleep 0.2
done

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Prints "<req/s> <microseconds of CPU per request>" for one wrk run against a process.
measure() {
  local pid=$1 url=$2 before after out
  wrk -t1 -c32 -d1s -H "Host: $HOST" "$url" >/dev/null
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c32 -d"${DURATION}s" -H "Host: $HOST" "$url")
  after=$(cpu_ticks "$pid")
  echo "$out" | awk -v b="$before" -v a="$after" -v t="$TICKS" '
    /requests in/ { requests = $1 }
    /Requests\/sec/ { rate = $2 }
    END { printf "%.0f %.2f\n", rate, (a - b) / t / requests * 1e6 }'
}

edge_costs=()
raw_costs=()
for round in $(seq 1 "$ROUNDS"); do
  read -r edge_rate edge_cost < <(measure "$EDGE_PID" http://127.0.0.1:8096/1k.bin)
  read -r raw_rate raw_cost < <(measure "$RAW_PID" http://127.0.0.1:8097/1k.bin)
  echo "round $round: edge $edge_rate req/s, $edge_cost us/request; raw-net $raw_rate req/s, $raw_cost us/request" >&2
  edge_costs+=("$edge_cost")
  raw_costs+=("$raw_cost")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
edge_median=$(median "${edge_costs[@]}")
raw_median=$(median "${raw_costs[@]}")
awk -v e="$edge_median" -v r="$raw_median" 'BEGIN {
  printf "| process | CPU per 1 KiB hit, median |\n| --- | ---: |\n"
  printf "| raw node:net ceiling | %.2f us |\n| Portico edge | %.2f us |\n| ratio | %.2f |\n", r, e, e / r
}'

#!/usr/bin/env bash
# Compares the plain port's listening sockets in one run. Portico with a socket of each edge
# worker's own (SO_REUSEPORT, the default) runs beside Portico with one socket that the workers
# share (PORTICO_NO_REUSEPORT=1), and nginx. It measures latency at one paced load (paced.sh), hits on
# a new connection each (new-connections.sh) and saturated hits over HTTP/1.1 and HTTP/2 with
# TLS (compare.sh), and prints how many connections each Portico handed between its workers.
# Starts the reference peers unless they already run, and stops only what it started.
#
#   bench/edge/listeners.sh      # from the repository root, after npm run build
#
# Environment (default): SHARED_BENCH (../shared/bench), EDGE_WORKERS (nproc), REPS (4),
# DURATION (6), PATHS ("/1k.bin /100k.bin") for the saturated runs; paced.sh and
# new-connections.sh keep their own PATHS. Ports: API 4597 and 4598, HTTP 8092 and 8088,
# HTTPS 8459 and 8460.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
EDGE_WORKERS=${EDGE_WORKERS:-$(nproc)}
export REPS=${REPS:-4} DURATION=${DURATION:-6}
SATURATED_PATHS=${PATHS:-/1k.bin /100k.bin}
unset PATHS

STARTED_PEERS=0
PIDS=()
DATA_DIRS=()

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $STARTED_PEERS == 1 ]]; then "$SHARED_BENCH/peers.sh" stop >&2 || true; fi
  rm -rf "${DATA_DIRS[@]}"
}
trap cleanup EXIT

# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"
prepare_peers
cd "$ROOT"

DATA_DIR=$(mktemp -d /tmp/portico-listeners.XXXXXX) API_PORT=4597 HTTP_PORT=8092 HTTPS_PORT=8459
DATA_DIRS+=("$DATA_DIR")
start_portico
PIDS+=("$PORTICO_PID")
own_domain=$DOMAIN
DATA_DIR=$(mktemp -d /tmp/portico-listeners.XXXXXX) API_PORT=4598 HTTP_PORT=8088 HTTPS_PORT=8460
DATA_DIRS+=("$DATA_DIR")
export PORTICO_NO_REUSEPORT=1
start_portico
unset PORTICO_NO_REUSEPORT
PIDS+=("$PORTICO_PID")
shared_domain=$DOMAIN

OWN=http://127.0.0.1:8092@$own_domain
SHARED=http://127.0.0.1:8088@$shared_domain
bench/edge/paced.sh "nginx=$NGINX_URL" "portico-own=$OWN" "portico-shared=$SHARED"
bench/edge/new-connections.sh "nginx=$NGINX_URL" "portico-own=$OWN" "portico-shared=$SHARED"
PATHS=$SATURATED_PATHS MODE=h1 "$SHARED_BENCH/compare.sh" "portico-own=$OWN" "portico-shared=$SHARED"
PATHS=$SATURATED_PATHS MODE=h2 "$SHARED_BENCH/compare.sh" "portico-own=https://127.0.0.1:8459@$own_domain" \
  "portico-shared=https://127.0.0.1:8460@$shared_domain"

echo "## connections handed between workers, over the whole run"
for api in 4597 4598; do
  echo "API port $api: $(curl -s "http://127.0.0.1:$api/_portico/metrics" | awk '$1 == "portico_edge_connections_handed_total" { print $2 }')"
done

#!/usr/bin/env bash
# Profiles the edge's hit path: starts `portico up` under --cpu-prof with a distribution in front
# of the benchmark origin, loads one object with wrk, stops Portico, and prints the functions
# with the most self time in each process's profile (the primary and every edge worker).
#
#   bench/edge/profile.sh [PATH] [SECONDS]     # default /1k.bin for 10 s
#
# Environment (default): SHARED_BENCH (../shared/bench), EDGE_WORKERS (nproc), PROFILE_DIR
# (a new folder under /tmp, kept), CONNS (64), THREADS (2), LOAD (h1: wrk over HTTP/1.1; h2:
# h2load over HTTP/2 with TLS, one request in flight per connection). The peers must be running
# (peers.sh start).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
OBJECT=${1:-/1k.bin}
SECONDS_OF_LOAD=${2:-10}
EDGE_WORKERS=${EDGE_WORKERS:-$(nproc)}
PROFILE_DIR=${PROFILE_DIR:-$(mktemp -d /tmp/portico-edge-profile.XXXXXX)}
API_PORT=4593
HTTP_PORT=8094
HTTPS_PORT=8457
DATA_DIR=$(mktemp -d /tmp/portico-edge-profile-data.XXXXXX)
PORTICO_PID=""

cleanup() {
  if [[ -n $PORTICO_PID ]]; then
    kill -TERM "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

eval "$("$SHARED_BENCH/peers.sh" env)"
cd "$ROOT"
export PORTICO_ACCESS_KEY_ID="AKIAPROF$(openssl rand -hex 6 | tr a-f A-F)"
export PORTICO_SECRET_ACCESS_KEY=$(openssl rand -hex 20)
node --cpu-prof --cpu-prof-dir="$PROFILE_DIR" dist/cli/main.js up --data-dir "$DATA_DIR" \
  --api-port "$API_PORT" --http-port "$HTTP_PORT" --https-port "$HTTPS_PORT" \
  --edge-workers "$EDGE_WORKERS" --log-level warn >"$PROFILE_DIR/portico.log" 2>&1 &
PORTICO_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$API_PORT/_portico/health" >/dev/null 2>&1 && break
  sleep 0.2
done
DOMAIN=$(PORTICO_API_URL="http://127.0.0.1:$API_PORT" ORIGIN_PORT="${ORIGIN_URL##*:}" \
  npx tsx bench/edge/create-distribution.ts)
for _ in 1 2 3 4; do curl -fsS -o /dev/null -H "Host: $DOMAIN" "http://127.0.0.1:$HTTP_PORT$OBJECT"; done
if [[ ${LOAD:-h1} == h2 ]]; then
  h2load -t"${THREADS:-2}" -c"${CONNS:-64}" -m1 -D"$SECONDS_OF_LOAD" --connect-to="127.0.0.1:$HTTPS_PORT" \
    "https://$DOMAIN$OBJECT" | grep -E '^(finished|requests|time for request)'
else
  wrk -t"${THREADS:-2}" -c"${CONNS:-64}" -d"${SECONDS_OF_LOAD}s" -H "Host: $DOMAIN" "http://127.0.0.1:$HTTP_PORT$OBJECT"
fi
kill -TERM "$PORTICO_PID"
wait "$PORTICO_PID" || true
PORTICO_PID=""
for profile in "$PROFILE_DIR"/*.cpuprofile; do
  echo "== $profile"
  node bench/edge/profile-summary.mjs "$profile" 30
done

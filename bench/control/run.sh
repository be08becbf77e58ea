#!/usr/bin/env bash
# Measures deploy and invalidation latency against a real `portico up` with its edge: builds,
# starts Portico on loopback with a fresh data folder, runs bench/control/latency.ts, and stops
# only the process it started.
#
#   bench/control/run.sh            # from the repository root
#
# Environment (default): PORTICO_BENCH_API_PORT (4690), PORTICO_BENCH_HTTP_PORT (8191),
# PORTICO_BENCH_HTTPS_PORT (8554), RUNS (100), POLL_MS (2), SKIP_BUILD (unset).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
API_PORT=${PORTICO_BENCH_API_PORT:-4690}
HTTP_PORT=${PORTICO_BENCH_HTTP_PORT:-8191}
HTTPS_PORT=${PORTICO_BENCH_HTTPS_PORT:-8554}
PORTICO_PID=""
DATA_DIR=$(mktemp -d /tmp/portico-control-bench.XXXXXX)

cleanup() {
  if [[ -n $PORTICO_PID ]]; then
    kill -TERM "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
cd "$ROOT"
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi

export PORTICO_ACCESS_KEY_ID="AKIABENCH$(openssl rand -hex 6 | tr a-f A-F)"
export PORTICO_SECRET_ACCESS_KEY=$(openssl rand -hex 20)
node dist/cli/main.js up --data-dir "$DATA_DIR" --host 127.0.0.1 --api-port "$API_PORT" \
  --http-port "$HTTP_PORT" --https-port "$HTTPS_PORT" --log-level warn \
  >"$DATA_DIR/portico.log" 2>&1 &
PORTICO_PID=$!
wait_for_portico "$API_PORT"

PORTICO_API_URL="http://127.0.0.1:$API_PORT" npx tsx bench/control/latency.ts

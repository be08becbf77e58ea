#!/usr/bin/env bash
# Benchmarks Portico's edge against nginx proxy_cache and Varnish in one run: cache hits over
# HTTP/1.1 keep-alive (wrk) and HTTP/2 with TLS (h2load), latency at one paced load for all
# (bench/edge/paced.sh), hits on a new connection each (bench/edge/new-connections.sh), the cost
# of a miss, and request collapsing. Starts the reference peers
# unless they already run, builds and starts `portico up` with a distribution in front of the
# same origin, and stops only what it started.
#
#   bench/edge/run.sh            # from the repository root
#
# Environment (default): SHARED_BENCH (../shared/bench), PORTICO_BENCH_HTTP_PORT (8091),
# PORTICO_BENCH_HTTPS_PORT (8454), PORTICO_BENCH_API_PORT (4590), EDGE_WORKERS (nproc),
# SKIP_BUILD (unset), MISS_WARM_UP (2000), and compare.sh's REPS, DURATION, CONNS, THREADS,
# PATHS and OUT_DIR. paced.sh and new-connections.sh read REPS, DURATION, CONNS, THREADS and
# PATHS too, and paced.sh also PACE_MS.
# MODES ("h1 h2 paced close") picks the measurements; h2c adds HTTP/2 without TLS.
# LIMITS (unset) set to 1 adds a 1 KiB run with the ceiling servers on ports 8095, 8098, 8099,
# 8097 and 8096: ../shared/bench/limit/raw-net-server.js, bench/edge/limits/tls-raw-server.cjs,
# node-http2-server.cjs, h2-raw-server.cjs and h2-native-tls-server.cjs (when the addon is built).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
HTTP_PORT=${PORTICO_BENCH_HTTP_PORT:-8091}
HTTPS_PORT=${PORTICO_BENCH_HTTPS_PORT:-8454}
API_PORT=${PORTICO_BENCH_API_PORT:-4590}
MODES=${MODES:-h1 h2 paced close}
EDGE_WORKERS=${EDGE_WORKERS:-$(nproc)}

STARTED_PEERS=0
PORTICO_PID=""
LIMIT_PIDS=()
DATA_DIR=$(mktemp -d /tmp/portico-edge-bench.XXXXXX)

cleanup() {
  for pid in "${LIMIT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n $PORTICO_PID ]]; then
    kill -TERM "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
  fi
  if [[ $STARTED_PEERS == 1 ]]; then "$SHARED_BENCH/peers.sh" stop >&2 || true; fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"
prepare_peers

cd "$ROOT"
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi

start_portico
echo "distribution $DOMAIN on ports $HTTP_PORT (HTTP) and $HTTPS_PORT (HTTPS)" >&2

# The cost of a miss: 60 requests for new names, timed by curl to the first response byte, each
# on a new connection, then all on one keep-alive connection. Prints the medians and p90s. Each
# target first serves MISS_WARM_UP misses, so that a JIT-compiled miss path is measured as it
# runs in service rather than as it runs its first few times.
MISS_COUNT=60
MISS_WARM_UP=${MISS_WARM_UP:-2000}
miss_cost() {
  local name=$1 url=$2 host=$3 i fresh reused
  local -a outputs=() urls=()
  curl -s -o /dev/null -H "Host: $host" "$url/miss/bench-warm-$RANDOM-$$-[1-$MISS_WARM_UP]" >/dev/null
  for i in $(seq 1 "$MISS_COUNT"); do
    urls+=("$url/miss/bench-new-$RANDOM-$i-$$")
  done
  fresh=$(for u in "${urls[@]}"; do curl -s -o /dev/null -w '%{time_starttransfer}\n' -H "Host: $host" "$u"; done)
  urls=()
  for i in $(seq 1 "$MISS_COUNT"); do
    urls+=("$url/miss/bench-reused-$RANDOM-$i-$$")
    outputs+=(-o /dev/null)
  done
  reused=$(curl -s "${outputs[@]}" -w '%{time_starttransfer}\n' -H "Host: $host" "${urls[@]}")
  printf '%s\n' "$fresh" | sort -n | awk -v n="$name" -v r="$(printf '%s\n' "$reused" | sort -n | tr '\n' ' ')" '
    { a[NR] = $1 }
    END {
      m = split(r, b, " ")
      printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", n, a[int((NR + 1) / 2)] * 1000, a[int(NR * 0.9)] * 1000,
        b[int((m + 1) / 2)] * 1000, b[int(m * 0.9)] * 1000
    }'
}

for mode in $MODES; do
  case $mode in
    h2)
      echo "## h2 cache hits"
      MODE=h2 "$SHARED_BENCH/compare.sh" "portico=https://127.0.0.1:$HTTPS_PORT@$DOMAIN"
      ;;
    h2c)
      # HTTP/2 without TLS, as Varnish is measured in the h2 table.
      echo "## h2c cache hits"
      MODE=h2 "$SHARED_BENCH/compare.sh" "portico-h2c=http://127.0.0.1:$HTTP_PORT@$DOMAIN"
      ;;
    paced)
      # Same offered load for each target: its own latency, not the load generator's share of the cores.
      bench/edge/paced.sh "nginx=$NGINX_URL" "nginx-nosendfile=$NGINX_NOSF_URL" "varnish=$VARNISH_URL" \
        "portico=http://127.0.0.1:$HTTP_PORT@$DOMAIN"
      ;;
    close)
      bench/edge/new-connections.sh "nginx=$NGINX_URL" "nginx-nosendfile=$NGINX_NOSF_URL" "varnish=$VARNISH_URL" \
        "portico=http://127.0.0.1:$HTTP_PORT@$DOMAIN"
      ;;
    *)
      echo "## h1 cache hits"
      MODE=h1 "$SHARED_BENCH/compare.sh" "portico=http://127.0.0.1:$HTTP_PORT@$DOMAIN"
      ;;
  esac
done

if [[ -n ${LIMITS:-} ]]; then
  # The ceilings serve one preallocated 1 KiB body on every path, so they run on /1k.bin only.
  TLS_DIR="$DATA_DIR/tls"
  PORT=8095 SIZE=1024 WORKERS="$EDGE_WORKERS" node "$SHARED_BENCH/limit/raw-net-server.js" &
  LIMIT_PIDS+=($!)
  KEY="$TLS_DIR/server.key" CERT="$TLS_DIR/server.crt" PORT=8098 SIZE=1024 WORKERS="$EDGE_WORKERS" \
    node bench/edge/limits/tls-raw-server.cjs &
  LIMIT_PIDS+=($!)
  KEY="$TLS_DIR/server.key" CERT="$TLS_DIR/server.crt" PORT=8099 SIZE=1024 WORKERS="$EDGE_WORKERS" \
    node bench/edge/limits/node-http2-server.cjs &
  LIMIT_PIDS+=($!)
  KEY="$TLS_DIR/server.key" CERT="$TLS_DIR/server.crt" PORT=8097 SIZE=1024 WORKERS="$EDGE_WORKERS" \
    node bench/edge/limits/h2-raw-server.cjs &
  LIMIT_PIDS+=($!)
  if [[ -f build/Release/viewer_tls.node ]]; then
    KEY="$TLS_DIR/server.key" CERT="$TLS_DIR/server.crt" PORT=8096 SIZE=1024 WORKERS="$EDGE_WORKERS" \
      node bench/edge/limits/h2-native-tls-server.cjs &
    LIMIT_PIDS+=($!)
    H2_NATIVE=(h2-native-tls=https://127.0.0.1:8096)
  else
    H2_NATIVE=()
  fi
  sleep 1
  echo "## ceilings at 1 KiB, HTTP/1.1"
  PATHS=/1k.bin MODE=h1 "$SHARED_BENCH/compare.sh" "portico=http://127.0.0.1:$HTTP_PORT@$DOMAIN" \
    raw-net=http://127.0.0.1:8095
  echo "## ceilings at 1 KiB, HTTP/1.1 over TLS (wrk)"
  PATHS=/1k.bin MODE=h1 "$SHARED_BENCH/compare.sh" "nginx-tls=$NGINX_TLS_URL" tls-raw=https://127.0.0.1:8098 \
    "portico-tls=https://127.0.0.1:$HTTPS_PORT@$DOMAIN"
  echo "## ceilings at 1 KiB, HTTP/2 over TLS (h2load)"
  PATHS=/1k.bin MODE=h2 "$SHARED_BENCH/compare.sh" "portico=https://127.0.0.1:$HTTPS_PORT@$DOMAIN" \
    node-http2=https://127.0.0.1:8099 h2-raw=https://127.0.0.1:8097 "${H2_NATIVE[@]}"
fi

echo "## miss cost ($MISS_COUNT sequential misses, time to the first response byte, ms)"
echo "| target | new connection, median | p90 | keep-alive, median | p90 |"
echo "| --- | ---: | ---: | ---: | ---: |"
miss_cost nginx "$NGINX_URL" "127.0.0.1"
miss_cost varnish "$VARNISH_URL" "127.0.0.1"
miss_cost portico "http://127.0.0.1:$HTTP_PORT" "$DOMAIN"

echo "## collapse (200 concurrent misses of one key)"
for target in "$NGINX_URL" "$VARNISH_URL" "http://127.0.0.1:$HTTP_PORT@$DOMAIN"; do
  "$SHARED_BENCH/collapse.sh" "$target" 200 || echo "collapse.sh failed for $target"
done

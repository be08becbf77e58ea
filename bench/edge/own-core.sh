#!/usr/bin/env bash
# Cache hits with the server on one core and the load generator on another. Portico runs as one
# edge process (`--edge-workers 1`) and nginx with one worker, each pinned to SERVER_CPU, while
# one wrk thread pinned to CLIENT_CPU keeps CONNS connections busy. In run.sh the servers' two
# processes and wrk's two threads share both cores, so a request also waits whenever its server
# process or its wrk thread waits for a core. Here neither waits for the other, so the
# percentiles show the server's own pauses, and req/s compares one core's worth of each server.
#
#   bench/edge/own-core.sh
#
# The peers must be running (../shared/bench/peers.sh start), since their origin serves the
# objects. The script starts its own nginx (`proxy_cache` as in the peers' nginx, one worker,
# sendfile on and off) and its own Portico, and stops both at the end. Environment (default): SHARED_BENCH
# (../shared/bench), REPS (3), DURATION in seconds (6), WARM_UP in seconds (3), CONNS (64), PATHS
# ("/1k.bin /10k.bin"), SERVER_CPU (0), CLIENT_CPU (1), SKIP_BUILD (unset), BENCH_DIR
# (/tmp/portico-bench, where the raw results go). Ports: Portico 8100 (HTTP), 8463 (HTTPS),
# 4596 (API); nginx 8101 (sendfile on) and 8102 (sendfile off).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
REPS=${REPS:-3}
DURATION=${DURATION:-6}
CONNS=${CONNS:-64}
PATHS=${PATHS:-/1k.bin /10k.bin}
WARM_UP=${WARM_UP:-3}
read -ra PATH_LIST <<< "$PATHS"
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
HTTP_PORT=8100
HTTPS_PORT=8463
API_PORT=4596
NGINX_PORT=8101
NGINX_NOSF_PORT=8102

if [[ $(nproc) -lt 2 ]]; then
  echo "own-core.sh needs at least 2 cores, found $(nproc)" >&2
  exit 2
fi
if ! "$SHARED_BENCH/peers.sh" status >/dev/null 2>&1; then
  echo "the benchmark peers are not running; start them with $SHARED_BENCH/peers.sh start" >&2
  exit 2
fi
eval "$("$SHARED_BENCH/peers.sh" env)"
ORIGIN_PORT=${ORIGIN_URL##*:}

WORK=$(mktemp -d /tmp/portico-own-core.XXXXXX)
NGINX_CACHE=/dev/shm/portico-own-core-$$
PORTICO_PID=""
NGINX_STARTED=0

cleanup() {
  if [[ -n $PORTICO_PID ]]; then
    kill -TERM "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
  fi
  if [[ $NGINX_STARTED == 1 && -f $WORK/nginx/nginx.pid ]]; then
    kill -TERM "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null || true
    sleep 0.5
  fi
  rm -rf "$WORK" "$NGINX_CACHE"
}
trap cleanup EXIT

# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"

mkdir -p "$WORK/nginx" "$NGINX_CACHE"
chown www-data: "$NGINX_CACHE"
cat > "$WORK/nginx/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    tcp_nopush off;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    proxy_cache_path $NGINX_CACHE levels=1:2 keys_zone=own_core:32m max_size=1g inactive=60m use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_cache own_core;
    proxy_cache_key \$proxy_host\$request_uri;
    proxy_cache_lock on;
    add_header X-Cache \$upstream_cache_status always;
    server { listen 127.0.0.1:$NGINX_PORT backlog=4096; location / { proxy_pass http://origin; } }
    server { listen 127.0.0.1:$NGINX_NOSF_PORT backlog=4096; sendfile off; location / { proxy_pass http://origin; } }
}
EOF
nginx -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
NGINX_STARTED=1
sleep 0.5

cd "$ROOT"
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi
export PORTICO_ACCESS_KEY_ID="AKIAOWNCORE$(openssl rand -hex 5 | tr a-f A-F)"
export PORTICO_SECRET_ACCESS_KEY=$(openssl rand -hex 20)
DATA_DIR="$WORK/portico" EDGE_WORKERS=1 start_portico

# Every thread of both servers, nginx's cache manager included, runs on SERVER_CPU only.
for pid in "$PORTICO_PID" "$(cat "$WORK/nginx/nginx.pid")" $(pgrep -P "$(cat "$WORK/nginx/nginx.pid")"); do
  taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null
done

parse_targets "portico=http://127.0.0.1:$HTTP_PORT@$DOMAIN" "nginx=http://127.0.0.1:$NGINX_PORT" \
  "nginx-nosendfile=http://127.0.0.1:$NGINX_NOSF_PORT"
RAW_DIR=${BENCH_DIR:-/tmp/portico-bench}/results
mkdir -p "$RAW_DIR"
RESULTS="$RAW_DIR/own-core-$(date -u +%Y%m%d-%H%M%S).txt"
fill_caches

closed_loop_run() {
  local i=$1 path=$2 line
  line=$(HOST_HEADER=${HOSTS[$i]} PACE_MS=0 taskset -c "$CLIENT_CPU" wrk -t 1 -c "$CONNS" -d "${DURATION}s" \
    -s "$ROOT/bench/edge/paced.lua" "${URLS[$i]}$path" | grep '^PACED ')
  echo "${line#PACED }"
}
# A first load of WARM_UP seconds on each target and path, so that the rounds measure Portico's
# JIT-compiled hit path and grown heap rather than its first seconds after the start.
for i in "${!NAMES[@]}"; do
  for path in "${PATH_LIST[@]}"; do
    HOST_HEADER=${HOSTS[$i]} PACE_MS=0 taskset -c "$CLIENT_CPU" wrk -t 1 -c "$CONNS" -d "${WARM_UP}s" \
      -s "$ROOT/bench/edge/paced.lua" "${URLS[$i]}$path" >/dev/null
  done
done
run_rounds closed_loop_run

echo "## cache hits, server on CPU $SERVER_CPU, one wrk thread on CPU $CLIENT_CPU: $CONNS connections, $REPS rounds of $DURATION s"
echo
echo "| path | target | req/s, median | vs nginx | p50 | p90 | p99 | p99.9 | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for path in "${PATH_LIST[@]}"; do
  # The faster nginx configuration for this path is the reference, as in compare.sh.
  best=$(awk -v p="$path" "$AWK_TABLE_FUNCTIONS"'
    $1 == p && $2 ~ /^nginx/ { m[$2]++; r[$2, m[$2]] = $3 / ($4 / 1e6) }
    END { for (n in m) { delete a; for (k = 1; k <= m[n]; k++) a[k] = r[n, k]; v = median(a, m[n]); if (v > best) best = v }
      print best }' "$RESULTS")
  for name in "${NAMES[@]}"; do
    awk -v p="$path" -v n="$name" -v best="$best" "$AWK_TABLE_FUNCTIONS"'
      $1 == p && $2 == n { m++; rps[m] = $3 / ($4 / 1e6); p50[m] = $5; p90[m] = $6; p99[m] = $7; p999[m] = $8; err += $9 }
      END { if (m) { r = median(rps, m)
        printf "| %s | %s | %s | %.2f | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d |\n", p, n, grouped(r), r / best,
          median(p50, m) / 1000, median(p90, m) / 1000, median(p99, m) / 1000, median(p999, m) / 1000, err } }' "$RESULTS"
  done
done
echo
echo "vs nginx: the median req/s divided by the faster nginx configuration's for the same path."
echo "Percentiles are medians over the rounds of each round's percentile."
echo "Raw results (path, target, requests, microseconds, p50, p90, p99, p99.9 in µs, errors): $RESULTS"

#!/usr/bin/env bash
# CPU time per HTTP/2 hit over TLS, for the server and for the load generator. The servers are
# nginx's TLS port, Portico (`portico up`, every process of it), and the bare HTTP/2 server, which
# responds to every request with one preallocated response of the object's size and does no
# other work: bench/edge/limits/h2-raw-server.cjs over Node.js's TLS, and h2-native-tls-server.cjs
# over the edge's TLS in C. Each round loads the four in turn with h2load (one request in flight
# on each connection) and divides each side's CPU time (user + system, from /proc for the servers
# and from /usr/bin/time for h2load) by the requests served. On a machine whose cores the server
# and h2load share, requests per second follow the sum of the two. CPU time per request moves far
# less with other load on the machine than the rate does.
#
#   bench/edge/h2-cpu.sh [PATH] [ROUNDS] [SECONDS]     # default /1k.bin, 5 rounds of 5 s
#
# PATH is /1k.bin or /10k.bin: the bare server sends its body in one DATA frame, which HTTP/2's
# default frame size limit bounds at 16 KiB.
#
# Environment (default): SHARED_BENCH (../shared/bench), EDGE_WORKERS (nproc), CONNS (64),
# THREADS (2), SKIP_BUILD (unset). The peers must be running (peers.sh start). Ports 4594,
# 8093, 8456, 8096 and 8092.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
OBJECT=${1:-/1k.bin}
ROUNDS=${2:-5}
DURATION=${3:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
EDGE_WORKERS=${EDGE_WORKERS:-$(nproc)}
API_PORT=4594
HTTP_PORT=8093
HTTPS_PORT=8456
BARE_PORT=8096
NATIVE_PORT=8092
DATA_DIR=$(mktemp -d /tmp/portico-h2-cpu.XXXXXX)
PORTICO_PID=""
BARE_PID=""
NATIVE_PID=""

cleanup() {
  if [[ -n $BARE_PID ]]; then kill "$BARE_PID" 2>/dev/null || true; fi
  if [[ -n $NATIVE_PID ]]; then kill "$NATIVE_PID" 2>/dev/null || true; fi
  if [[ -n $PORTICO_PID ]]; then
    kill -TERM "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

eval "$("$SHARED_BENCH/peers.sh" env)"
# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"
ORIGIN_PORT=${ORIGIN_URL##*:}
NGINX_TLS_PORT=${NGINX_TLS_URL##*:}
cd "$ROOT"
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi

export PORTICO_ACCESS_KEY_ID="AKIAH2CPU$(openssl rand -hex 6 | tr a-f A-F)"
export PORTICO_SECRET_ACCESS_KEY=$(openssl rand -hex 20)
start_portico
case $OBJECT in
  /1k.bin) SIZE=1024 ;;
  /10k.bin) SIZE=10240 ;;
  *) echo "h2-cpu.sh: invalid PATH $OBJECT; use /1k.bin or /10k.bin" >&2; exit 2 ;;
esac
KEY="$DATA_DIR/tls/server.key" CERT="$DATA_DIR/tls/server.crt" PORT=$BARE_PORT SIZE=$SIZE \
  WORKERS="$EDGE_WORKERS" node bench/edge/limits/h2-raw-server.cjs &
BARE_PID=$!
KEY="$DATA_DIR/tls/server.key" CERT="$DATA_DIR/tls/server.crt" PORT=$NATIVE_PORT SIZE=$SIZE \
  WORKERS="$EDGE_WORKERS" node bench/edge/limits/h2-native-tls-server.cjs &
NATIVE_PID=$!
for _ in 1 2 3; do curl -fsS -o /dev/null -H "Host: $DOMAIN" "http://127.0.0.1:$HTTP_PORT$OBJECT"; done
sleep 1

# The nginx that peers.sh started: its master's PID is the second field of its line in pids.
NGINX_MASTER=$(awk '$1 == "nginx" { print $2 }' "$BENCH_DIR/pids")
TICKS=$(getconf CLK_TCK)

# Prints "<req/s> <server us of CPU per request> <h2load us per request>" for one h2load run.
measure() {
  local pid=$1 port=$2 url=$3 before after out
  wait_until_quiet
  before=$(tree_ticks "$pid")
  out=$( { /usr/bin/time -f "CLIENT %U %S" h2load -t"$THREADS" -c"$CONNS" -m1 -D"$DURATION" \
    --connect-to="127.0.0.1:$port" "$url"; } 2>&1)
  after=$(tree_ticks "$pid")
  echo "$out" | awk -v b="$before" -v a="$after" -v t="$TICKS" '
    /^finished in/ { rate = $4 }
    /^requests:/ { requests = $6 }
    /^CLIENT/ { client = $2 + $3 }
    END { printf "%.0f %.2f %.2f\n", rate, (a - b) / t / requests * 1e6, client / requests * 1e6 }'
}

NAMES=(nginx portico bare bare-c)
declare -A RATES SERVER CLIENT
# A first run of each target warms up the JIT compilers and is not counted.
for target in "$NGINX_TLS_PORT https://127.0.0.1$OBJECT" "$HTTPS_PORT https://$DOMAIN$OBJECT" "$BARE_PORT https://$DOMAIN$OBJECT" \
  "$NATIVE_PORT https://$DOMAIN$OBJECT"; do
  read -r port url <<< "$target"
  h2load -t"$THREADS" -c"$CONNS" -m1 -D2 --connect-to="127.0.0.1:$port" "$url" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
  for k in 0 1 2 3; do
    name=${NAMES[$(( (k + round - 1) % 4 ))]}
    case $name in
      nginx) read -r rate server client < <(measure "$NGINX_MASTER" "$NGINX_TLS_PORT" "https://127.0.0.1$OBJECT") ;;
      portico) read -r rate server client < <(measure "$PORTICO_PID" "$HTTPS_PORT" "https://$DOMAIN$OBJECT") ;;
      bare) read -r rate server client < <(measure "$BARE_PID" "$BARE_PORT" "https://$DOMAIN$OBJECT") ;;
      bare-c) read -r rate server client < <(measure "$NATIVE_PID" "$NATIVE_PORT" "https://$DOMAIN$OBJECT") ;;
    esac
    echo "round $round: $name $rate req/s, server $server us, h2load $client us a request" >&2
    RATES[$name]+="$rate " SERVER[$name]+="$server " CLIENT[$name]+="$client "
  done
done

echo "## CPU per HTTP/2 hit over TLS, $OBJECT, median of $ROUNDS rounds of $DURATION s, $CONNS connections"
echo
echo "| server | req/s | server CPU per request | h2load CPU per request | server vs nginx |"
echo "| --- | ---: | ---: | ---: | ---: |"
# shellcheck disable=SC2086
nginx_server=$(median ${SERVER[nginx]})
for name in "${NAMES[@]}"; do
  # shellcheck disable=SC2086
  awk -v n="$name" -v r="$(median ${RATES[$name]})" -v s="$(median ${SERVER[$name]})" \
    -v c="$(median ${CLIENT[$name]})" -v base="$nginx_server" \
    'BEGIN { printf "| %s | %d | %.2f µs | %.2f µs | %.2f |\n", n, r, s, c, s / base }'
done

#!/usr/bin/env bash
# HTTP/1.1 cache hits of one object on nginx (sendfile on) and on Portico, and what the kernel's
# TCP pacing costs each. Each row gives requests per second, p99, the server's CPU time per
# request and the machine's local timer interrupts per request (from /proc/interrupts). It also
# gives how many of the server's connections BBR still has in its startup phase halfway through.
#
# BBR paces a connection's packets, and where no qdisc does the pacing (tc shows noqueue on
# loopback), the kernel's TCP stack does it with a timer per connection. A 100 KiB response
# leaves as two segments of up to 64 KiB. When the second is due before the pacing rate allows,
# the kernel arms that timer and sends the segment from the timer's softirq.
# How often that happens follows BBR's estimate of the connection's bandwidth. BBR counts it in
# packets per round trip, so the way a server cuts a response into packets changes it.
#
#   bench/edge/pacing.sh [PATH] [ROUNDS] [SECONDS]     # default /100k.bin, 5 rounds of 5 s
#
# With ALSO_CC=cubic (as root), a second pass runs the same rounds with
# net.ipv4.tcp_congestion_control set to cubic, which does not pace, and the old value is put
# back when the script ends, however it ends.
#
# Environment (default): SHARED_BENCH (../shared/bench), EDGE_WORKERS (nproc), CONNS (64),
# THREADS (2), ALSO_CC (unset), SKIP_BUILD (unset). The peers must be running (peers.sh start).
# Ports 4594, 8093 and 8456.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
OBJECT=${1:-/100k.bin}
ROUNDS=${2:-5}
DURATION=${3:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
EDGE_WORKERS=${EDGE_WORKERS:-$(nproc)}
API_PORT=4594
HTTP_PORT=8093
HTTPS_PORT=8456
DATA_DIR=$(mktemp -d /tmp/portico-pacing.XXXXXX)
PORTICO_PID=""
CC_SYSCTL=net.ipv4.tcp_congestion_control
SYSTEM_CC=$(sysctl -n "$CC_SYSCTL")

cleanup() {
  if [[ $(sysctl -n "$CC_SYSCTL") != "$SYSTEM_CC" ]]; then sysctl -qw "$CC_SYSCTL=$SYSTEM_CC"; fi
  if [[ -n $PORTICO_PID ]]; then
    kill -TERM "$PORTICO_PID" 2>/dev/null || true
    wait "$PORTICO_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

if [[ -n ${ALSO_CC:-} ]]; then
  if [[ $(id -u) -ne 0 ]]; then echo "pacing.sh: ALSO_CC needs root" >&2; exit 2; fi
  if ! grep -qw "$ALSO_CC" /proc/sys/net/ipv4/tcp_available_congestion_control; then
    modprobe "tcp_$ALSO_CC" 2>/dev/null || { echo "pacing.sh: congestion control $ALSO_CC is not available" >&2; exit 2; }
  fi
fi

eval "$("$SHARED_BENCH/peers.sh" env)"
# shellcheck source=lib.sh
source "$ROOT/bench/edge/lib.sh"
ORIGIN_PORT=${ORIGIN_URL##*:}
NGINX_PORT=${NGINX_URL##*:}
cd "$ROOT"
if [[ -z ${SKIP_BUILD:-} ]]; then npm run build >&2; fi

export PORTICO_ACCESS_KEY_ID="AKIAPACING$(openssl rand -hex 5 | tr a-f A-F)"
export PORTICO_SECRET_ACCESS_KEY=$(openssl rand -hex 20)
start_portico
for _ in 1 2 3; do
  curl -fsS -o /dev/null -H "Host: $DOMAIN" "http://127.0.0.1:$HTTP_PORT$OBJECT"
  curl -fsS -o /dev/null "$NGINX_URL$OBJECT"
done

# The nginx that peers.sh started: its master's PID is the second field of its line in pids.
NGINX_MASTER=$(awk '$1 == "nginx" { print $2 }' "$BENCH_DIR/pids")
TICKS=$(getconf CLK_TCK)

# Prints the local timer interrupts of all CPUs so far.
timer_interrupts() {
  awk '$1 == "LOC:" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) sum += $i; print sum }' /proc/interrupts
}

# Prints how many of the server's connections on PORT BBR has in startup, as "N/M", or "-"
# when they do not use BBR.
bbr_startup() {
  ss -tni "( sport = :$1 )" | awk '/ESTAB/ { m++ } / bbr / { b++ } /pacing_gain:2\.88/ { n++ }
    END { if (b) printf "%d/%d\n", n, m; else print "-" }'
}

# Prints "<req/s> <p99 ms> <server us of CPU per request> <timer interrupts per 1000 requests>
# <connections in BBR startup>" for one wrk run.
measure() {
  local pid=$1 port=$2 url=$3 host=$4 before after timers_before timers_after out startup
  wait_until_quiet
  before=$(tree_ticks "$pid")
  timers_before=$(timer_interrupts)
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency ${host:+-H "Host: $host"} "$url" > "$DATA_DIR/wrk.out" &
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
  startup=$(bbr_startup "$port")
  wait $!
  after=$(tree_ticks "$pid")
  timers_after=$(timer_interrupts)
  awk -v b="$before" -v a="$after" -v t="$TICKS" -v tb="$timers_before" -v ta="$timers_after" -v s="$startup" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { requests = $1 }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rate = $2 }
    END { printf "%.0f %.2f %.2f %.0f %s\n", rate, p99, (a - b) / t / requests * 1e6, (ta - tb) / requests * 1000, s }' \
    "$DATA_DIR/wrk.out"
}


# Runs ROUNDS rounds of both servers, alternating which goes first, and prints the table rows.
run_pass() {
  local cc=$1 round k name rate p99 cpu timers startup
  local -A RATES P99 CPU TIMERS STARTUP
  for round in $(seq 1 "$ROUNDS"); do
    for k in 0 1; do
      name=$([[ $(( (k + round) % 2 )) -eq 0 ]] && echo nginx || echo portico)
      if [[ $name == nginx ]]; then
        read -r rate p99 cpu timers startup < <(measure "$NGINX_MASTER" "$NGINX_PORT" "$NGINX_URL$OBJECT" "")
      else
        read -r rate p99 cpu timers startup < <(measure "$PORTICO_PID" "$HTTP_PORT" "http://127.0.0.1:$HTTP_PORT$OBJECT" "$DOMAIN")
      fi
      echo "$cc round $round: $name $rate req/s, p99 $p99 ms, $cpu us a request, $timers timer interrupts per 1000, BBR startup $startup" >&2
      RATES[$name]+="$rate " P99[$name]+="$p99 " CPU[$name]+="$cpu " TIMERS[$name]+="$timers " STARTUP[$name]+="$startup "
    done
  done
  local nginx_rate
  # shellcheck disable=SC2086
  nginx_rate=$(median ${RATES[nginx]})
  for name in nginx portico; do
    # shellcheck disable=SC2086
    awk -v cc="$cc" -v n="$name" -v r="$(median ${RATES[$name]})" -v p="$(median ${P99[$name]})" \
      -v c="$(median ${CPU[$name]})" -v t="$(median ${TIMERS[$name]})" -v s="${STARTUP[$name]% }" -v base="$nginx_rate" \
      'BEGIN { printf "| %s | %s | %d | %.2f | %.2f ms | %.2f µs | %d | %s |\n", cc, n, r, r / base, p, c, t, s }'
  done
}

ROWS=$(run_pass "$SYSTEM_CC")
if [[ -n ${ALSO_CC:-} ]]; then
  sysctl -qw "$CC_SYSCTL=$ALSO_CC"
  ROWS+=$'\n'$(run_pass "$ALSO_CC")
  sysctl -qw "$CC_SYSCTL=$SYSTEM_CC"
fi

echo "## HTTP/1.1 hits of $OBJECT and TCP pacing, median of $ROUNDS rounds of $DURATION s, $CONNS connections"
echo
echo "| congestion control | server | req/s | vs nginx | p99 | server CPU per request | timer interrupts per 1000 requests | connections in BBR startup, each round |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
echo "$ROWS"

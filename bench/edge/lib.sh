# Functions shared by the edge benchmarks: run.sh, listeners.sh, own-core.sh, and paced.sh and
# new-connections.sh, which drive wrk themselves. The callers of run_rounds set REPS, PATH_LIST
# and RESULTS first.

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Starts the reference peers of SHARED_BENCH unless they already run, and then sets
# STARTED_PEERS to 1. Loads the peers' addresses and ORIGIN_PORT, and exports a random root key
# for the Portico instances that start_portico starts.
prepare_peers() {
  if ! "$SHARED_BENCH/peers.sh" status >/dev/null 2>&1; then
    "$SHARED_BENCH/peers.sh" start >&2
    STARTED_PEERS=1
  fi
  eval "$("$SHARED_BENCH/peers.sh" env)"
  ORIGIN_PORT=${ORIGIN_URL##*:}
  PORTICO_ACCESS_KEY_ID="AKIABENCH$(openssl rand -hex 6 | tr a-f A-F)"
  PORTICO_SECRET_ACCESS_KEY=$(openssl rand -hex 20)
  export PORTICO_ACCESS_KEY_ID PORTICO_SECRET_ACCESS_KEY
}

# Splits NAME=URL[@HOST] arguments into the arrays NAMES, URLS and HOSTS.
parse_targets() {
  local target name rest
  NAMES=() URLS=() HOSTS=()
  for target in "$@"; do
    name=${target%%=*} rest=${target#*=}
    NAMES+=("$name")
    if [[ $rest == *@* ]]; then URLS+=("${rest%@*}") HOSTS+=("${rest##*@}"); else URLS+=("$rest") HOSTS+=(""); fi
  done
}

# Requests every path of every target a few times, so that every cache has stored it.
fill_caches() {
  local i path
  for i in "${!NAMES[@]}"; do
    for path in "${PATH_LIST[@]}"; do
      for _ in 1 2 3; do
        curl -sk -o /dev/null ${HOSTS[$i]:+-H "Host: ${HOSTS[$i]}"} "${URLS[$i]}$path" || true
      done
    done
  done
}

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

# Waits up to 30 s for the other processes to use at most BUSY_MAX_CORES (0.2).
wait_until_quiet() {
  local waited=0
  while awk -v c="$(cores_in_use)" -v max="${BUSY_MAX_CORES:-0.2}" 'BEGIN { exit !(c > max) }'; do
    waited=$((waited + 1))
    if [[ $waited -ge 30 ]]; then echo "$(basename "$0"): the machine is still busy after 30 s, running anyway" >&2; return; fi
  done
}

# Runs MEASURE (a function taking a target index and a path and printing one line) REPS times
# for every path and target, once the machine is quiet, and appends "PATH NAME LINE" to RESULTS.
# The order of the targets rotates from one round to the next.
run_rounds() {
  local measure=$1 count=${#NAMES[@]} path round k i line
  for path in "${PATH_LIST[@]}"; do
    for round in $(seq 1 "$REPS"); do
      for k in $(seq 0 $((count - 1))); do
        i=$(( (k + round - 1) % count ))
        wait_until_quiet
        echo "$(basename "$0"): ${NAMES[$i]} $path round $round" >&2
        line=$("$measure" "$i" "$path")
        echo "$path ${NAMES[$i]} $line" >> "$RESULTS"
      done
    done
  done
}

# awk functions for the tables: the median of a[1..m], and an integer with thousands separators.
AWK_TABLE_FUNCTIONS='
  function median(a, m,   t, i, j) {
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function grouped(x,   s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
'

# Starts `portico up` in the background with DATA_DIR, API_PORT, HTTP_PORT, HTTPS_PORT and
# EDGE_WORKERS, and sets PORTICO_PID. Once the API is healthy, creates a distribution in front of
# the origin on ORIGIN_PORT and sets DOMAIN to its domain name. Run it from the repository root,
# with PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY set.
start_portico() {
  mkdir -p "$DATA_DIR"
  node dist/cli/main.js up --data-dir "$DATA_DIR" --api-port "$API_PORT" --http-port "$HTTP_PORT" \
    --https-port "$HTTPS_PORT" --edge-workers "$EDGE_WORKERS" --log-level warn >"$DATA_DIR/portico.log" 2>&1 &
  PORTICO_PID=$!
  wait_for_portico "$API_PORT"
  DOMAIN=$(PORTICO_API_URL="http://127.0.0.1:$API_PORT" ORIGIN_PORT="$ORIGIN_PORT" \
    npx tsx bench/edge/create-distribution.ts)
}

# Prints the CPU ticks (user + system) that PID and its children have used so far.
tree_ticks() {
  local pid sum=0
  for pid in "$1" $(pgrep -P "$1" || true); do
    sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}

# Prints the median of its numeric arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

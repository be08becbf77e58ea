# Functions shared by the benchmarks under bench/.

# Waits up to 20 s for the health route of the Portico API on port $1, and fails after that.
wait_for_portico() {
  local port=$1
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/_portico/health" >/dev/null 2>&1; then return; fi
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$port/_portico/health" >/dev/null
}

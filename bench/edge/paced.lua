-- wrk script for paced.sh: each connection waits PACE_MS milliseconds after a response before
-- it sends its next request, so every target gets about the same offered load, below what
-- saturates it. own-core.sh runs it with PACE_MS=0 for its percentiles. Sends HOST_HEADER
-- (when set) as the Host header. When the run ends, prints
-- "PACED <requests> <duration_us> <p50_us> <p90_us> <p99_us> <p999_us> <errors>", and then
-- the errors by kind: "<connect> <read> <write> <status> <timeout>".
local host = os.getenv("HOST_HEADER")
if host ~= nil and host ~= "" then
  wrk.headers["Host"] = host
end
local pace_ms = tonumber(os.getenv("PACE_MS") or "1")

-- With PACE_MS=0 there is no delay function, so each connection sends its next request as soon
-- as a response ends, as plain wrk does.
if pace_ms > 0 then
  function delay()
    return pace_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("PACED %d %d %d %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.status + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout))
end

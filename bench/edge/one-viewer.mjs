// Times hits for one viewer at a time: sequential GETs over one keep-alive connection, with a
// pause after each response, so that no request waits behind another. Prints percentiles of the
// time from writing a request to reading the last byte of its response.
//
//   node bench/edge/one-viewer.mjs PORT PATH [HOST] [REQUESTS] [PAUSE_MS]
//
// Connects to 127.0.0.1:PORT and sends HOST as the Host header (default 127.0.0.1). REQUESTS
// defaults to 1500 and PAUSE_MS to 1. The responses must carry Content-Length.
import { connect } from "node:net";

const [port, path, host = "127.0.0.1", requests = "1500", pauseMs = "1"] = process.argv.slice(2);
if (port === undefined || path === undefined) {
  console.error("usage: node bench/edge/one-viewer.mjs PORT PATH [HOST] [REQUESTS] [PAUSE_MS]");
  process.exit(2);
}
const total = Number(requests);
const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
const socket = connect(Number(port), "127.0.0.1");
const latencies = [];
let pending = Buffer.alloc(0);
let sentAt = 0n;

function send() {
  sentAt = process.hrtime.bigint();
  socket.write(request);
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(0);
}

socket.on("connect", send);
socket.on("error", (error) => {
  console.error(`one-viewer.mjs: ${error.message}`);
  process.exit(1);
});
socket.on("data", (chunk) => {
  pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
  const headEnd = pending.indexOf("\r\n\r\n");
  if (headEnd < 0) return;
  const length = /content-length: *(\d+)/i.exec(pending.toString("latin1", 0, headEnd));
  if (length === null) {
    console.error("one-viewer.mjs: a response is missing Content-Length");
    process.exit(1);
  }
  const end = headEnd + 4 + Number(length[1]);
  if (pending.length < end) return;
  latencies.push(Number(process.hrtime.bigint() - sentAt) / 1000);
  pending = pending.subarray(end);
  if (latencies.length < total) {
    setTimeout(send, Number(pauseMs));
    return;
  }
  socket.end();
  latencies.sort((a, b) => a - b);
  const [p10, p50, p90, p99] = [0.1, 0.5, 0.9, 0.99].map((q) => percentile(latencies, q));
  console.log(`${total} requests: p10 ${p10} µs, p50 ${p50} µs, p90 ${p90} µs, p99 ${p99} µs`);
});

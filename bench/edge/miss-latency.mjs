// Times sequential cache misses over one keep-alive connection: GETs of new names under
// /miss/, which the benchmark origin serves as its 1 KiB file. A warm-up of WARM_UP misses
// comes first, so a JIT-compiled miss path is measured. Prints the median and p90 of the
// misses, and of as many hits of /1k.bin for comparison.
//   node bench/edge/miss-latency.mjs PORT [HOST_HEADER] [COUNT]
//   e.g. node bench/edge/miss-latency.mjs 8091 d123.portico.localhost 3000
import http from "node:http";

const port = Number(process.argv[2] ?? 8091);
const host = process.argv[3] ?? "127.0.0.1";
const count = Number(process.argv[4] ?? 3000);
const warmUp = Number(process.env.WARM_UP ?? 2000);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const run = `${process.pid}-${Date.now()}`;

/** Sends one GET and resolves with the milliseconds to the end of its body. */
function timedGet(path) {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const request = http.get({ host: "127.0.0.1", port, path, agent, headers: { host } }, (response) => {
      response.resume();
      response.on("end", () => {
        if (response.statusCode !== 200) reject(new Error(`GET ${path} returned status ${response.statusCode}, expected 200`));
        else resolve(performance.now() - startedAt);
      });
    });
    request.on("error", reject);
  });
}

async function series(label, paths) {
  const times = [];
  for (const path of paths) times.push(await timedGet(path));
  times.sort((a, b) => a - b);
  const at = (fraction) => times[Math.min(times.length - 1, Math.floor(times.length * fraction))].toFixed(3);
  console.log(`${label}: median ${at(0.5)} ms, p90 ${at(0.9)} ms over ${times.length}`);
}

for (let i = 0; i < warmUp; i++) await timedGet(`/miss/warm-${run}-${i}`);
await series("miss", Array.from({ length: count }, (_, i) => `/miss/timed-${run}-${i}`));
await series("hit", Array.from({ length: count }, () => "/1k.bin"));
agent.destroy();

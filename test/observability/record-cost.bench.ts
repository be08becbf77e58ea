/**
 * Measures what recording one request costs on the request path: the
 * CloudWatch aggregator alone, the Prometheus collector, the access-log
 * writer, the whole fan-out, and, when PROM_CLIENT_DIR names a folder with
 * prom-client installed, prom-client's counters and histograms with the same
 * labels. Run: node --import tsx test/observability/record-cost.bench.ts
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/common/logger.js";
import { DistributionDirectory } from "../../src/metrics/access-log/distributions.js";
import { AccessLogWriter } from "../../src/metrics/access-log/writer.js";
import { FanOutSink } from "../../src/metrics/fan-out.js";
import { createMetrics } from "../../src/metrics/index.js";
import { PrometheusCollector } from "../../src/metrics/prometheus.js";
import type { MetricsSink, RequestRecord } from "../../src/metrics/types.js";

const RECORDS = 1_000_000;
const ROUNDS = 5;

function record(index: number): RequestRecord {
  return {
    distributionId: `E${index % 4}BENCH`,
    timestampMs: Date.now(),
    edgeId: "edge-1",
    method: "GET",
    path: "/index.html",
    query: "",
    host: "d0000000000000.portico.localhost",
    protocol: "https",
    httpVersion: "1.1",
    status: 200,
    bytesDownloaded: 1400,
    bytesUploaded: 0,
    resultType: "Hit",
    originLatencyMs: undefined,
    durationMs: 0.08,
    clientIp: "127.0.0.1",
    userAgent: "wrk",
    referer: undefined,
    requestId: "0123456789ABCDEF0123456789ABCDEF",
  };
}

const records = Array.from({ length: 1024 }, (_, index) => record(index));

function measure(name: string, sink: MetricsSink, drain?: () => void): void {
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < RECORDS; i++) {
      sink.record(records[i & 1023]!);
      // The writer's formatting timer runs each second; drain as often so the array stays bounded.
      if (drain !== undefined && (i & 65535) === 65535) drain();
    }
    samples.push(Number(process.hrtime.bigint() - started) / RECORDS);
    drain?.();
  }
  samples.sort((a, b) => a - b);
  process.stdout.write(`${name.padEnd(28)} median ${samples[Math.floor(ROUNDS / 2)]!.toFixed(0)} ns/record\n`);
}

const dataDir = await mkdtemp(join(tmpdir(), "portico-bench-"));
const metrics = await createMetrics({ dataDir, log: silentLogger() });
const prometheus = new PrometheusCollector();
const directory = new DistributionDirectory();
const writer = new AccessLogWriter({
  directory,
  intervalSeconds: 3600,
  upload: async () => {},
  writeLocal: async () => {},
  log: silentLogger(),
});
// Only the append is on the request path; formatting runs on a timer and is drained outside the count.
const drainWriter = (): void => {
  (writer as unknown as { pending: RequestRecord[] }).pending.length = 0;
};

measure("aggregator (CloudWatch)", metrics.sink);
measure("prometheus collector", prometheus);
measure("access-log append", writer, drainWriter);
measure("fan-out (all three)", new FanOutSink([metrics.sink, prometheus, writer], silentLogger()), drainWriter);

const promClientDir = process.env.PROM_CLIENT_DIR;
if (promClientDir !== undefined) {
  const require = createRequire(join(promClientDir, "package.json"));
  // prom-client is not a dependency of Portico, so its types are declared here for the calls used.
  type Labels = Record<string, string>;
  interface PromClient {
    Registry: new () => object;
    Counter: new (options: object) => { inc(labels: Labels, value?: number): void };
    Histogram: new (options: object) => { observe(labels: Labels, value: number): void };
  }
  const client = require("prom-client") as PromClient;
  const registry = new client.Registry();
  const requests = new client.Counter({
    name: "requests_total",
    help: "requests",
    labelNames: ["distribution_id", "status_class", "cache_status"],
    registers: [registry],
  });
  const sent = new client.Counter({ name: "sent_bytes_total", help: "bytes", labelNames: ["distribution_id"], registers: [registry] });
  const duration = new client.Histogram({
    name: "request_duration_seconds",
    help: "duration",
    labelNames: ["distribution_id"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const size = new client.Histogram({
    name: "response_size_bytes",
    help: "size",
    labelNames: ["distribution_id"],
    buckets: [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
    registers: [registry],
  });
  measure("prom-client (same series)", {
    record(entry) {
      const labels = { distribution_id: entry.distributionId };
      requests.inc({ ...labels, status_class: "2xx", cache_status: entry.resultType });
      sent.inc(labels, entry.bytesDownloaded);
      duration.observe(labels, entry.durationMs / 1000);
      size.observe(labels, entry.bytesDownloaded);
    },
  });
}

await writer.close();
await metrics.close();
await rm(dataDir, { recursive: true, force: true });

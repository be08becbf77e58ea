import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { encodeLogField, formatLogLine, logFileKey, LOG_FIELDS } from "../../src/metrics/access-log/format.js";
import { DistributionDirectory } from "../../src/metrics/access-log/distributions.js";
import { applyRollup, EdgeRollupSink } from "../../src/metrics/edge-rollup.js";
import { escapeLabelValue, PrometheusCollector } from "../../src/metrics/prometheus.js";
import type { MetricsReader } from "../../src/metrics/reader.js";
import { buildStatusReport } from "../../src/metrics/status.js";
import type { ControlChannel } from "../../src/cluster/types.js";
import type { RequestRecord } from "../../src/metrics/types.js";

const REPO = join(import.meta.dirname, "..", "..");

function sample(overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    distributionId: "EDFDVBD6EXAMPLE",
    timestampMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    edgeId: "edge-1",
    method: "GET",
    path: "/index.html",
    query: "",
    host: "www.example.com",
    protocol: "https",
    httpVersion: "2.0",
    status: 200,
    bytesDownloaded: 1000,
    bytesUploaded: 0,
    resultType: "Hit",
    originLatencyMs: undefined,
    durationMs: 1.5,
    clientIp: "192.0.2.1",
    userAgent: undefined,
    referer: undefined,
    requestId: "REQ",
    ...overrides,
  };
}

test("log field encoding follows CloudFront's table", () => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, "-"],
    ["", "-"],
    ["plain/text-1.0", "plain/text-1.0"],
    ["a b", "a%20b"],
    ["tab\there", "tab%09here"],
    ['<>"#%{}|\\^~[]`\'', "%3C%3E%22%23%25%7B%7D%7C%5C%5E%7E%5B%5D%60%27"],
    ["\x7f", "%7F"],
    // Header values arrive as latin1 strings of the received bytes, here UTF-8 "é".
    [Buffer.from("é", "utf8").toString("latin1"), "%C3%A9"],
    ["日本", "%E6%97%A5%E6%9C%AC"],
  ];
  for (const [input, expected] of cases) assert.equal(encodeLogField(input), expected, `input ${JSON.stringify(input)}`);
  assert.equal(encodeLogField("/a%2Fb c", true), "/a%2Fb%20c", "an encoded path keeps its escapes");
});

test("log line has 33 fields in order", () => {
  const line = formatLogLine(sample({ status: 0, resultType: "Error" }), { domainName: "d111.portico.localhost", includeCookies: false });
  assert.ok(line.endsWith("\n"));
  const fields = line.slice(0, -1).split("\t");
  assert.equal(fields.length, LOG_FIELDS.length);
  assert.equal(LOG_FIELDS.length, 33);
  assert.equal(fields[0], "2026-01-02");
  assert.equal(fields[1], "03:04:05");
  assert.equal(fields[6], "d111.portico.localhost");
  assert.equal(fields[8], "000", "a viewer that left before a response is 000");
  assert.equal(fields[15], "www.example.com");
  assert.equal(fields[18], "0.002");
  assert.equal(fields[23], "HTTP/2.0");
});

test("connection and response fields are logged", () => {
  const line = formatLogLine(
    sample({
      tlsProtocol: "TLSv1.3",
      tlsCipher: "TLS_AES_256_GCM_SHA384",
      clientPort: 61052,
      contentType: "text/html; charset=utf-8",
      contentLength: 2039,
      rangeStart: 100,
      rangeEnd: 199,
      requestBytes: 412,
      timeToFirstByteMs: 1.6,
    }),
    { domainName: "d", includeCookies: false },
  );
  const fields = line.slice(0, -1).split("\t");
  assert.equal(fields[20], "TLSv1.3");
  assert.equal(fields[21], "TLS_AES_256_GCM_SHA384");
  assert.equal(fields[26], "61052");
  assert.equal(fields[17], "412", "cs-bytes counts the whole request");
  assert.equal(fields[27], "0.002", "time-to-first-byte in seconds");
  assert.equal(fields[29], "text/html;%20charset=utf-8");
  assert.equal(fields[30], "2039");
  assert.equal(fields[31], "100");
  assert.equal(fields[32], "199");

  const plain = formatLogLine(sample({ protocol: "http" }), { domainName: "d", includeCookies: false }).slice(0, -1).split("\t");
  for (const index of [20, 21, 26, 27, 29, 30, 31, 32]) assert.equal(plain[index], "-", `${LOG_FIELDS[index]} without a value`);
  const zero = formatLogLine(sample({ contentLength: 0, rangeStart: 0, rangeEnd: 0 }), { domainName: "d", includeCookies: false });
  const zeroFields = zero.slice(0, -1).split("\t");
  assert.equal(zeroFields[30], "0", "an empty body has length 0, not -");
  assert.equal(zeroFields[31], "0");
});

test("cookies are logged only when included", () => {
  const record = sample({ cookie: "a=1; b=2" });
  const without = formatLogLine(record, { domainName: "d", includeCookies: false }).split("\t");
  const withCookies = formatLogLine(record, { domainName: "d", includeCookies: true }).split("\t");
  assert.equal(without[12], "-");
  assert.equal(withCookies[12], "a=1;%20b=2");
});

test("log file keys follow CloudFront naming", () => {
  const hourMs = Date.UTC(2019, 10, 14, 20);
  assert.equal(logFileKey("example-prefix/", "EMLARXS9EXAMPLE", hourMs, "RT4KCN4SGK9"), "example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz");
  assert.equal(logFileKey("", "EMLARXS9EXAMPLE", hourMs, "X"), "EMLARXS9EXAMPLE.2019-11-14-20.X.gz");
});

test("prometheus label values are escaped", () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const collector = new PrometheusCollector();
  collector.record(sample({ distributionId: 'E"1' }));
  assert.match(collector.render(), /portico_requests_total\{distribution_id="E\\"1",status_class="2xx",cache_status="Hit"\} 1/);
});

test("prometheus cacheable requests follow CacheHitRate", () => {
  const collector = new PrometheusCollector();
  collector.record(sample({ method: "GET", status: 200, resultType: "Hit" }));
  collector.record(sample({ method: "HEAD", status: 304, resultType: "RefreshHit" }));
  collector.record(sample({ method: "GET", status: 200, resultType: "Miss" }));
  collector.record(sample({ method: "POST", status: 200, resultType: "Miss" }));
  collector.record(sample({ method: "PUT", status: 201, resultType: "Miss" }));
  collector.record(sample({ method: "GET", status: 404, resultType: "Error" }));
  const text = collector.render();
  const count = (status: string) =>
    Number(new RegExp(`portico_cacheable_requests_total\\{distribution_id="EDFDVBD6EXAMPLE",cache_status="${status}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  assert.equal(count("Hit"), 1);
  assert.equal(count("RefreshHit"), 1);
  assert.equal(count("Miss"), 1, "POST and PUT are not counted");
  assert.equal(count("Error"), 0, "errors are not counted");
});

test("prometheus counts abandoned requests as 000", () => {
  const collector = new PrometheusCollector();
  collector.record(sample({ status: 200, resultType: "Hit" }));
  collector.record(sample({ status: 0, resultType: "Error", bytesDownloaded: 0 }));
  collector.record(sample({ status: 0, resultType: "Error", bytesDownloaded: 0 }));
  const text = collector.render();
  assert.match(text, /^portico_requests_total\{distribution_id="EDFDVBD6EXAMPLE",status_class="000",cache_status="Error"\} 2$/m);
  assert.match(text, /^portico_requests_total\{distribution_id="EDFDVBD6EXAMPLE",status_class="2xx",cache_status="Hit"\} 1$/m);
  assert.match(text, /^portico_request_duration_seconds_count\{distribution_id="EDFDVBD6EXAMPLE"\} 3$/m);
  assert.doesNotMatch(text, /portico_cacheable_requests_total\{[^}]*cache_status="Error"\}/, "an abandoned request is not cacheable");
  assert.match(text, /^portico_cacheable_requests_total\{distribution_id="EDFDVBD6EXAMPLE",cache_status="Hit"\} 1$/m);
});

test("prometheus counts HTTP/2 floods of workers", () => {
  const worker = new EdgeRollupSink(() => false);
  worker.countHttp2Flood("reset");
  worker.countHttp2Flood("reset");
  worker.countHttp2Flood("window_update");
  // A rollup with only floods in it is still sent.
  assert.equal(worker.empty, false);
  const primary = new PrometheusCollector();
  primary.countHttp2Flood("reset");
  applyRollup(worker.take(), { addMinute: () => {}, prometheus: primary, records: undefined, countDropped: () => {} });
  assert.equal(worker.empty, true);
  const text = primary.render();
  assert.match(text, /^portico_edge_http2_floods_total\{kind="reset"\} 3$/m);
  assert.match(text, /^portico_edge_http2_floods_total\{kind="window_update"\} 1$/m);
  assert.match(text, /^portico_edge_http2_floods_total\{kind="ping"\} 0$/m);
});

test("status rates without requests are null", () => {
  const directory = new DistributionDirectory();
  directory.observe({
    type: "distribution.updated",
    snapshot: {
      id: "EIDLE000000000",
      arn: "arn:aws:cloudfront::000000000000:distribution/EIDLE000000000",
      domainName: "didle000000000.portico.localhost",
      version: 1,
      config: { CallerReference: "idle", Comment: "", Enabled: true, Origins: { Quantity: 0, Items: [] }, DefaultCacheBehavior: undefined },
      originAccessControls: {},
    },
  });
  const reader = { now: () => Date.now(), alignStartMs: (ms: number) => ms, statistics: () => [] } as unknown as MetricsReader;
  const bus = { liveEdges: () => [] } as unknown as ControlChannel;
  const report = buildStatusReport({ directory, bus, reader }, 5);
  const row = report.distributions[0]!;
  assert.equal(row.requests, 0);
  assert.equal(row.cacheHitRate, null);
  assert.equal(row.errorRate, null);
  const json = JSON.parse(JSON.stringify(report)) as { distributions: Array<Record<string, unknown>> };
  assert.ok("cacheHitRate" in json.distributions[0]!, "the JSON keeps cacheHitRate");
  assert.ok("errorRate" in json.distributions[0]!, "the JSON keeps errorRate");
});

test("prometheus histograms are cumulative", () => {
  const collector = new PrometheusCollector();
  for (const durationMs of [0.1, 0.7, 3, 20_000]) collector.record(sample({ durationMs, originLatencyMs: durationMs }));
  const text = collector.render();
  const bucket = (le: string) =>
    Number(new RegExp(`portico_request_duration_seconds_bucket\\{distribution_id="EDFDVBD6EXAMPLE",le="${le.replace("+", "\\+")}"\\} (\\d+)`).exec(text)?.[1]);
  assert.equal(bucket("0.0005"), 1);
  assert.equal(bucket("0.001"), 2);
  assert.equal(bucket("0.005"), 3);
  assert.equal(bucket("10"), 3, "20 s is past the last bound");
  assert.equal(bucket("+Inf"), 4);
  assert.match(text, /portico_request_duration_seconds_count\{distribution_id="EDFDVBD6EXAMPLE"\} 4/);
  assert.match(text, /portico_origin_latency_seconds_count\{distribution_id="EDFDVBD6EXAMPLE"\} 4/);
});

test("grafana dashboard names only exported metrics", async () => {
  const dashboard = JSON.parse(await readFile(join(REPO, "dashboards", "grafana.json"), "utf8")) as {
    panels: Array<{ targets: Array<{ expr: string }> }>;
  };
  const collector = new PrometheusCollector();
  collector.record(sample());
  collector.addExternal({ name: "portico_access_log_lost_records_total", help: "h", type: "counter", read: () => [] });
  collector.addExternal({ name: "portico_access_log_delivery_failures_total", help: "h", type: "counter", read: () => [] });
  collector.addExternal({ name: "portico_access_log_buffered_bytes", help: "h", type: "gauge", read: () => [] });
  const exported = new Set([...collector.render().matchAll(/^# TYPE (\S+)/gm)].map((match) => match[1]!));
  const used = dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => [...target.expr.matchAll(/portico_[a-z_]+/g)].map((m) => m[0])));
  assert.ok(used.length >= 8);
  for (const name of used) {
    const base = name.replace(/_(bucket|sum|count)$/, "");
    assert.ok(exported.has(base), `the dashboard uses ${name}, which is not exported`);
  }
});

test("progress line writes only to terminals", async () => {
  const { Writable } = await import("node:stream");
  const { ProgressLine, withElapsedTime } = await import("../../src/cli/progress.js");
  const capture = (isTTY: boolean) => {
    let written = "";
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        written += chunk.toString();
        callback();
      },
    }) as unknown as NodeJS.WriteStream;
    Object.assign(stream, { isTTY, columns: 20 });
    return { stream, text: () => written };
  };

  const terminal = capture(true);
  const line = new ProgressLine(terminal.stream);
  const result = await withElapsedTime(line.update, "waiting for a deploy", Promise.resolve(42));
  assert.equal(result, 42);
  assert.equal(terminal.text(), "\r\x1b[2Kwaiting for a deplo", "the line is cut to the terminal width");
  line.clear();
  assert.ok(terminal.text().endsWith("\r\x1b[2K"), "clear erases the line");

  const pipe = capture(false);
  const quiet = new ProgressLine(pipe.stream);
  quiet.update("uploading 1/2");
  quiet.clear();
  assert.equal(pipe.text(), "");
});

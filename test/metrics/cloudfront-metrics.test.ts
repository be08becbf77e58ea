import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  GetMetricDataCommand,
  GetMetricStatisticsCommand,
  ListMetricsCommand,
  type CloudWatchClient,
  type Datapoint,
} from "@aws-sdk/client-cloudwatch";
import { requestRecord, startHarness, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const DISTRIBUTION = "E2CFMETRICS001";
const dimensions = [
  { Name: "DistributionId", Value: DISTRIBUTION },
  { Name: "Region", Value: "Global" },
];

describe("AWS/CloudFront metrics over JSON 1.0", () => {
  let harness: Harness;
  let client: CloudWatchClient;
  // Two whole minutes in the past, so every record lands in a known minute.
  const minuteA = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 3 * MINUTE_MS;
  const minuteB = minuteA + MINUTE_MS;

  before(async () => {
    harness = await startHarness();
    client = harness.client();
    const sink = harness.metrics.sink;
    // Minute A: one request, an error, so its per-minute rate is 100%.
    sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: minuteA + 5_000, status: 503, resultType: "Error", bytesDownloaded: 300, originLatencyMs: 40 }));
    // Minute B: nine requests, none an error.
    const at = minuteB + 10_000;
    for (let i = 0; i < 4; i++) sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: at, bytesDownloaded: 1000 }));
    sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: at, resultType: "RefreshHit", bytesDownloaded: 1000, originLatencyMs: 5 }));
    sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: at, resultType: "Miss", bytesDownloaded: 2000, originLatencyMs: 10 }));
    sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: at, resultType: "Miss", bytesDownloaded: 2000, originLatencyMs: 30 }));
    sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: at, method: "HEAD", resultType: "Miss", bytesDownloaded: 200, originLatencyMs: 20 }));
    sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: at, method: "POST", resultType: "Miss", bytesDownloaded: 100, bytesUploaded: 5000, originLatencyMs: 50 }));
    // A request for another distribution must not leak into this one.
    sink.record(requestRecord({ distributionId: "E2OTHERDIST01", timestampMs: at, status: 404 }));
  });
  after(() => harness.close());

  async function statistics(metricName: string, periodSeconds: number, extra: Record<string, unknown> = {}): Promise<Datapoint[]> {
    const output = await client.send(
      new GetMetricStatisticsCommand({
        Namespace: "AWS/CloudFront",
        MetricName: metricName,
        Dimensions: dimensions,
        StartTime: new Date(minuteA),
        EndTime: new Date(minuteA + 2 * MINUTE_MS),
        Period: periodSeconds,
        Statistics: ["Sum", "Average", "SampleCount", "Minimum", "Maximum"],
        ...extra,
      }),
    );
    return (output.Datapoints ?? []).sort((a, b) => a.Timestamp!.getTime() - b.Timestamp!.getTime());
  }

  test("requests are visible before any flush", async () => {
    const points = await statistics("Requests", 120);
    assert.equal(points.length, 1);
    assert.equal(points[0]!.Sum, 10);
    assert.equal(points[0]!.SampleCount, 10);
    assert.equal(points[0]!.Timestamp!.getTime(), minuteA);
    assert.equal(points[0]!.Unit, "None");
  });

  test("per-minute requests", async () => {
    const points = await statistics("Requests", 60);
    assert.deepEqual(points.map((p) => [p.Timestamp!.getTime(), p.Sum]), [[minuteA, 1], [minuteB, 9]]);
  });

  test("error rate is computed from counts", async () => {
    const points = await statistics("TotalErrorRate", 120);
    assert.equal(points.length, 1);
    // One error in ten requests: 10%, not the 50% that averaging the minutes' rates would give.
    assert.equal(points[0]!.Average, 10);
    assert.equal(points[0]!.Unit, "Percent");
    const fiveHundreds = await statistics("5xxErrorRate", 120);
    assert.equal(fiveHundreds[0]!.Average, 10);
    const status503 = await statistics("503ErrorRate", 120);
    assert.equal(status503[0]!.Average, 10);
    const fourHundreds = await statistics("4xxErrorRate", 120);
    assert.equal(fourHundreds[0]!.Average, 0);
    const status404 = await statistics("404ErrorRate", 120);
    assert.equal(status404[0]!.Average, 0);
  });

  test("bytes count the right methods", async () => {
    const downloaded = await statistics("BytesDownloaded", 120);
    // GET and HEAD requests only; the POST's 100 bytes are not counted.
    assert.equal(downloaded[0]!.Sum, 300 + 4 * 1000 + 1000 + 2 * 2000 + 200);
    assert.equal(downloaded[0]!.Maximum, 2000);
    assert.equal(downloaded[0]!.Minimum, 200);
    const uploaded = await statistics("BytesUploaded", 120);
    assert.equal(uploaded[0]!.Sum, 5000);
    assert.equal(uploaded[0]!.SampleCount, 1);
  });

  test("cache hit rate over cacheable requests", async () => {
    const points = await statistics("CacheHitRate", 120);
    // Cacheable: 8 GET/HEAD non-errors (the 503 and the POST are left out); hits: 4 Hit + 1 RefreshHit.
    assert.equal(points[0]!.SampleCount, 8);
    assert.equal(points[0]!.Average, (5 / 8) * 100);
  });

  test("abandoned requests count as requests only", async () => {
    const distribution = "E2ABANDONED001";
    const at = minuteB + 20_000;
    for (let i = 0; i < 3; i++) harness.metrics.sink.record(requestRecord({ distributionId: distribution, timestampMs: at }));
    harness.metrics.sink.record(requestRecord({ distributionId: distribution, timestampMs: at, status: 0, resultType: "Error", bytesDownloaded: 0 }));
    const read = async (metricName: string) => {
      const output = await client.send(
        new GetMetricStatisticsCommand({
          Namespace: "AWS/CloudFront",
          MetricName: metricName,
          Dimensions: [{ Name: "DistributionId", Value: distribution }, { Name: "Region", Value: "Global" }],
          StartTime: new Date(minuteB),
          EndTime: new Date(minuteB + MINUTE_MS),
          Period: 60,
          Statistics: ["Sum", "Average", "SampleCount"],
        }),
      );
      assert.equal(output.Datapoints?.length, 1, metricName);
      return output.Datapoints![0]!;
    };
    assert.equal((await read("Requests")).Sum, 4);
    const hitRate = await read("CacheHitRate");
    assert.equal(hitRate.SampleCount, 3, "the abandoned request is not cacheable");
    assert.equal(hitRate.Average, 100);
    const errorRate = await read("TotalErrorRate");
    assert.equal(errorRate.SampleCount, 4);
    assert.equal(errorRate.Average, 0, "an abandoned request is not a 4xx or 5xx error");
    assert.equal((await read("5xxErrorRate")).Average, 0);
  });

  test("origin latency percentiles", async () => {
    const points = await statistics("OriginLatency", 120, { Statistics: undefined, ExtendedStatistics: ["p50", "p99", "p100"] });
    assert.equal(points.length, 1);
    assert.equal(points[0]!.Unit, "Milliseconds");
    const extended = points[0]!.ExtendedStatistics!;
    // Samples 5, 10, 20, 30, 40, 50: nearest rank p50 is the 3rd value.
    assert.equal(extended.p50, 20);
    assert.equal(extended.p99, 50);
    assert.equal(extended.p100, 50);
    const plain = await statistics("OriginLatency", 120);
    assert.equal(plain[0]!.Average, (5 + 10 + 20 + 30 + 40 + 50) / 6);
    assert.equal(plain[0]!.Minimum, 5);
  });

  test("dimensions must match exactly", async () => {
    const output = await client.send(
      new GetMetricStatisticsCommand({
        Namespace: "AWS/CloudFront",
        MetricName: "Requests",
        Dimensions: [{ Name: "DistributionId", Value: DISTRIBUTION }],
        StartTime: new Date(minuteA),
        EndTime: new Date(minuteA + 2 * MINUTE_MS),
        Period: 60,
        Statistics: ["Sum"],
      }),
    );
    assert.deepEqual(output.Datapoints, []);
  });

  test("unit filter excludes other units", async () => {
    const points = await statistics("Requests", 120, { Unit: "Percent" });
    assert.equal(points.length, 0);
  });

  test("list metrics names every metric", async () => {
    const output = await client.send(
      new ListMetricsCommand({ Namespace: "AWS/CloudFront", Dimensions: [{ Name: "DistributionId", Value: DISTRIBUTION }] }),
    );
    const names = (output.Metrics ?? []).map((m) => m.MetricName).sort();
    assert.equal(names.length, 14);
    for (const name of ["Requests", "TotalErrorRate", "CacheHitRate", "OriginLatency", "401ErrorRate", "504ErrorRate"]) {
      assert.ok(names.includes(name), `${name} missing from ${names.join(",")}`);
    }
    assert.deepEqual(output.Metrics![0]!.Dimensions, dimensions);
  });

  test("get metric data with math", async () => {
    const metric = (name: string) => ({ Namespace: "AWS/CloudFront", MetricName: name, Dimensions: dimensions });
    const output = await client.send(
      new GetMetricDataCommand({
        StartTime: new Date(minuteA),
        EndTime: new Date(minuteA + 2 * MINUTE_MS),
        MetricDataQueries: [
          { Id: "errors", MetricStat: { Metric: metric("TotalErrorRate"), Period: 60, Stat: "Average" }, ReturnData: false },
          { Id: "requests", MetricStat: { Metric: metric("Requests"), Period: 60, Stat: "Sum" } },
          { Id: "errorcount", Expression: "errors * requests / 100", Label: "Errors" },
          { Id: "total", Expression: "SUM(METRICS())" },
        ],
      }),
    );
    const results = new Map((output.MetricDataResults ?? []).map((r) => [r.Id, r]));
    assert.equal(results.has("errors"), false);
    const requests = results.get("requests")!;
    // TimestampDescending is the default order.
    assert.deepEqual(requests.Timestamps!.map((t) => t.getTime()), [minuteB, minuteA]);
    assert.deepEqual(requests.Values, [9, 1]);
    assert.equal(requests.Label, "Requests");
    assert.equal(requests.StatusCode, "Complete");
    const errorCount = results.get("errorcount")!;
    assert.equal(errorCount.Label, "Errors");
    assert.deepEqual(errorCount.Values, [0, 1]);
    assert.deepEqual(results.get("total")!.Values, [9 + 0, 1 + 100]);
  });
});

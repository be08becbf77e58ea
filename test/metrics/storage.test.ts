import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GetMetricStatisticsCommand, ListMetricsCommand, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { Sketch, MAX_EXACT_BINS, MAX_LOG_BINS, RELATIVE_ACCURACY } from "../../src/metrics/sketch.js";
import type { RequestRecord } from "../../src/metrics/types.js";
import { requestRecord, startHarness, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 3600 * 1000;
const DISTRIBUTION = "E2STORAGE00001";
const dimensions = [
  { Name: "DistributionId", Value: DISTRIBUTION },
  { Name: "Region", Value: "Global" },
];

describe("metrics storage", () => {
  let harness: Harness;
  // A fixed clock at a whole hour, so the roll-up boundaries are predictable.
  const startMs = Date.UTC(2030, 0, 10, 12, 0, 0);

  before(async () => {
    harness = await startHarness({ nowMs: startMs });
  });
  after(() => harness.close());

  async function requestSums(fromMs: number, toMs: number, periodSeconds: number): Promise<Array<[number, number]>> {
    const output = await harness.client().send(
      new GetMetricStatisticsCommand({
        Namespace: "AWS/CloudFront",
        MetricName: "Requests",
        Dimensions: dimensions,
        StartTime: new Date(fromMs),
        EndTime: new Date(toMs),
        Period: periodSeconds,
        Statistics: ["Sum"],
      }),
    );
    return (output.Datapoints ?? [])
      .map((p): [number, number] => [p.Timestamp!.getTime(), p.Sum!])
      .sort(([a], [b]) => a - b);
  }

  test("database file is created", () => {
    assert.ok(existsSync(join(harness.dataDir, "metrics", "metrics.db")));
  });

  test("flushed minutes survive a reopen and keep adding", async () => {
    // Signed requests carry the real time, so the clock only ages stored data here.
    const minuteMs = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 2 * MINUTE_MS;
    harness.clock.nowMs = Date.now();
    for (let i = 0; i < 5; i++) harness.metrics.sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: minuteMs + i }));
    await harness.reopen();
    for (let i = 0; i < 3; i++) harness.metrics.sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: minuteMs + 100 + i }));
    // 5 from disk plus 3 still in memory, in the same minute.
    assert.deepEqual(await requestSums(minuteMs, minuteMs + MINUTE_MS, 60), [[minuteMs, 8]]);
    await harness.reopen();
    assert.deepEqual(await requestSums(minuteMs, minuteMs + MINUTE_MS, 60), [[minuteMs, 8]]);
  });

  test("record never throws on bad input", () => {
    const sink = harness.metrics.sink;
    assert.doesNotThrow(() => sink.record(null as unknown as RequestRecord));
    assert.doesNotThrow(() => sink.record({} as RequestRecord));
    assert.doesNotThrow(() => sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: NaN, method: undefined as unknown as string })));
  });

  test("old minutes roll up to five minutes, then hours", async () => {
    // Two hours of traffic, 1 request per minute, written at a known old time.
    const trafficStartMs = Date.UTC(2030, 0, 1, 0, 0, 0);
    harness.clock.nowMs = trafficStartMs + 2 * 3600 * 1000;
    for (let minute = 0; minute < 120; minute++) {
      harness.metrics.sink.record(requestRecord({ distributionId: "E2ROLLUP000001", timestampMs: trafficStartMs + minute * MINUTE_MS }));
    }
    await harness.reopen();

    const sumsFor = (nowMs: number, periodSeconds: number) => {
      harness.clock.nowMs = nowMs;
      return statisticsAt(harness, "E2ROLLUP000001", trafficStartMs, trafficStartMs + 2 * 3600 * 1000, periodSeconds);
    };

    // 20 days later: the minutes are now 5-minute buckets.
    harness.clock.nowMs = trafficStartMs + 20 * DAY_MS;
    await harness.reopen();
    const fiveMinute = sumsFor(trafficStartMs + 20 * DAY_MS, 300);
    assert.equal(fiveMinute.length, 24);
    assert.ok(fiveMinute.every(([, sum]) => sum === 5), JSON.stringify(fiveMinute));
    // 5-minute buckets return nothing for a one-minute period.
    assert.deepEqual(sumsFor(trafficStartMs + 20 * DAY_MS, 60), []);

    // 70 days later: hourly buckets.
    harness.clock.nowMs = trafficStartMs + 70 * DAY_MS;
    await harness.reopen();
    assert.deepEqual(sumsFor(trafficStartMs + 70 * DAY_MS, 3600), [
      [trafficStartMs, 60],
      [trafficStartMs + 3600 * 1000, 60],
    ]);
    assert.deepEqual(sumsFor(trafficStartMs + 70 * DAY_MS, 300), []);

    // Past 455 days nothing is left.
    harness.clock.nowMs = trafficStartMs + 460 * DAY_MS;
    await harness.reopen();
    assert.deepEqual(sumsFor(trafficStartMs + 460 * DAY_MS, 3600), []);
  });

  test("custom metrics round trip after reopen", async () => {
    harness.clock.nowMs = Date.now();
    const client = harness.client();
    const timestamp = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS);
    await client.send(
      new PutMetricDataCommand({
        Namespace: "Portico/Storage",
        MetricData: [{ MetricName: "Depth", Dimensions: [{ Name: "B", Value: "2" }, { Name: "A", Value: "1" }], Value: 3, Timestamp: timestamp }],
      }),
    );
    await harness.reopen();
    // Dimension order does not matter: the metric is the same.
    const output = await client.send(
      new GetMetricStatisticsCommand({
        Namespace: "Portico/Storage",
        MetricName: "Depth",
        Dimensions: [{ Name: "A", Value: "1" }, { Name: "B", Value: "2" }],
        StartTime: timestamp,
        EndTime: new Date(timestamp.getTime() + MINUTE_MS),
        Period: 60,
        Statistics: ["Sum"],
      }),
    );
    assert.deepEqual(output.Datapoints?.map((p) => p.Sum), [3]);
    const listed = await client.send(new ListMetricsCommand({ Namespace: "Portico/Storage" }));
    assert.equal(listed.Metrics?.length, 1);
  });
});

/** Queries through the reader directly, because SigV4 rejects requests signed far from the fake clock. */
function statisticsAt(harness: Harness, distributionId: string, fromMs: number, toMs: number, periodSeconds: number) {
  const reader = harness.metrics.reader;
  return reader
    .statistics({
      metric: {
        namespace: "AWS/CloudFront",
        metricName: "Requests",
        dimensions: [
          { Name: "DistributionId", Value: distributionId },
          { Name: "Region", Value: "Global" },
        ],
      },
      startMs: reader.alignStartMs(fromMs),
      endMs: toMs,
      periodSeconds,
      unit: undefined,
    })
    .map((p): [number, number] => [p.timestampMs, p.stats.sum]);
}

describe("sketch", () => {
  test("exact while few distinct values", () => {
    const sketch = new Sketch();
    for (let i = 1; i <= 100; i++) sketch.add(i);
    assert.equal(sketch.percentile(0.5, 1, 100), 50);
    assert.equal(sketch.percentile(0.99, 1, 100), 99);
    assert.equal(sketch.percentile(1, 1, 100), 100);
  });

  /** Adds a seeded log-uniform spread over `decades` decades from 0.01 up; returns the sorted values. */
  function fillLogUniform(sketch: Sketch, decades: number): number[] {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const value = Math.pow(10, random() * decades - 2);
      values.push(value);
      sketch.add(value);
    }
    return values.sort((a, b) => a - b);
  }

  function percentileError(sketch: Sketch, values: number[], fraction: number): number {
    const exact = values[Math.ceil(fraction * values.length) - 1]!;
    const estimate = sketch.percentile(fraction, values[0]!, values[values.length - 1]!)!;
    return (estimate - exact) / exact;
  }

  test("bounded error on many values", () => {
    // Four decades fit in MAX_LOG_BINS bins at 1%, so every percentile is within the accuracy.
    const sketch = new Sketch();
    const values = fillLogUniform(sketch, 4);
    const json = sketch.toJson();
    assert.equal(json.logarithmic, true);
    assert.ok(json.bins.length <= MAX_LOG_BINS, `too many bins: ${json.bins.length}`);
    assert.ok(json.bins.length > MAX_EXACT_BINS);
    for (const fraction of [0.01, 0.25, 0.5, 0.9, 0.99, 0.999]) {
      const error = percentileError(sketch, values, fraction);
      assert.ok(Math.abs(error) <= RELATIVE_ACCURACY * 1.01, `p${fraction * 100}: relative error ${error}`);
    }
  });

  test("bin cap keeps high percentiles", () => {
    // Six decades need about 690 bins: the lowest ones are merged.
    const sketch = new Sketch();
    const values = fillLogUniform(sketch, 6);
    assert.equal(sketch.toJson().bins.length, MAX_LOG_BINS);
    assert.equal(sketch.count, values.length);
    for (const fraction of [0.5, 0.9, 0.99, 0.999]) {
      const error = percentileError(sketch, values, fraction);
      assert.ok(Math.abs(error) <= RELATIVE_ACCURACY * 1.01, `p${fraction * 100}: relative error ${error}`);
    }
    // A percentile in the merged range comes out high, never low.
    assert.ok(percentileError(sketch, values, 0.01) > RELATIVE_ACCURACY);
    const roundTrip = Sketch.fromJson(JSON.parse(JSON.stringify(sketch.toJson())));
    assert.equal(roundTrip.toJson().bins.length, MAX_LOG_BINS);
  });

  test("merge keeps counts", () => {
    const a = new Sketch();
    const b = new Sketch();
    for (let i = 0; i < 300; i++) a.add(i * 1.5);
    for (let i = 0; i < 10; i++) b.add(7);
    b.merge(a);
    assert.equal(b.count, 310);
    const roundTrip = Sketch.fromJson(JSON.parse(JSON.stringify(b.toJson())));
    assert.equal(roundTrip.count, 310);
  });

  test("merges of wide sketches stay bounded", () => {
    // Values spread over 13 orders of magnitude fill every logarithmic bin.
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values: number[] = [];
    const parts = Array.from({ length: 400 }, () => {
      const part = new Sketch();
      for (let i = 0; i < 150; i++) {
        const value = Math.exp(next() * 30 - 8);
        values.push(value);
        part.add(value);
      }
      return part;
    });
    const total = new Sketch();
    for (const part of parts) total.merge(part);
    assert.equal(total.count, 60_000);
    assert.ok(total.toJson().bins.length <= MAX_LOG_BINS);
    // The bins kept are the highest ones, so high percentiles keep their accuracy.
    values.sort((a, b) => a - b);
    const exact = values[Math.ceil(0.99 * values.length) - 1]!;
    const p99 = total.percentile(0.99, values[0]!, values.at(-1)!)!;
    assert.ok(Math.abs(p99 - exact) / exact <= 2 * RELATIVE_ACCURACY, `p99 ${p99} against ${exact}`);
  });
});

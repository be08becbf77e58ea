import assert from "node:assert/strict";
import { test } from "node:test";
import { getMetricData } from "../../src/api/cloudwatch/get-metric-data.js";
import type { OperationContext } from "../../src/api/cloudwatch/operations.js";
import { MetricsReader } from "../../src/metrics/reader.js";
import { emptyStatSet } from "../../src/metrics/stat-set.js";

test("GetMetricData yields between slices of buckets", async () => {
  const endMs = Date.UTC(2026, 0, 2);
  // A reader whose buckets each take 5 ms to decode and merge, as wide
  // histograms do; the slicing is MetricsReader's own.
  const reader = Object.create(MetricsReader.prototype) as MetricsReader;
  Object.assign(reader, {
    alignStartMs: (startMs: number) => startMs,
    *bucketsFor() {
      for (let minute = 0; minute < 30; minute++) {
        yield {
          bucketStartMs: endMs - 3_600_000 + minute * 60_000,
          resolutionSeconds: 60,
          unit: "None",
          stats: () => {
            const until = performance.now() + 5;
            while (performance.now() < until) {
              // Busy, as decoding and merging a wide bucket is.
            }
            return emptyStatSet(true);
          },
        };
      }
    },
  });
  const queries = Array.from({ length: 2 }, (_, index) => ({
    Id: `q${index}`,
    MetricStat: { Metric: { Namespace: "Portico/Slices", MetricName: "Work" }, Period: 60, Stat: "p99" },
  }));
  let longestGapMs = 0;
  let last = performance.now();
  let ticking = true;
  const tick = (): void => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const started = performance.now();
  try {
    const output = await getMetricData(
      { MetricDataQueries: queries, StartTime: endMs - 3_600_000, EndTime: endMs },
      { reader } as unknown as OperationContext,
    );
    // One more turn, so a tick held up by the last slice is measured too.
    await new Promise<void>((resume) => setImmediate(resume));
    assert.equal((output.MetricDataResults as unknown[]).length, 2);
  } finally {
    ticking = false;
  }
  assert.ok(performance.now() - started >= 300, "the buckets took their time");
  // 60 buckets of 5 ms run in slices of about 20 ms, never in one 300 ms block.
  assert.ok(longestGapMs < 100, `the event loop waited ${longestGapMs.toFixed(1)} ms`);
});

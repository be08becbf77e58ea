import assert from "node:assert/strict";
import { test } from "node:test";
import { getMetricData } from "../../src/api/cloudwatch/get-metric-data.js";
import type { OperationContext } from "../../src/api/cloudwatch/operations.js";

test("GetMetricData yields between slices of series", async () => {
  // A reader whose every series read holds the thread for 5 ms, as a dense series does.
  const reader = {
    alignStartMs: (startMs: number) => startMs,
    statistics: () => {
      const until = performance.now() + 5;
      while (performance.now() < until) {
        // Busy, as a synchronous SQLite read and sketch merge are.
      }
      return [];
    },
  };
  const queries = Array.from({ length: 60 }, (_, index) => ({
    Id: `q${index}`,
    MetricStat: { Metric: { Namespace: "Portico/Slices", MetricName: "Work" }, Period: 60, Stat: "Sum" },
  }));
  const endMs = Date.UTC(2026, 0, 2);
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
  const output = await getMetricData(
    { MetricDataQueries: queries, StartTime: endMs - 3_600_000, EndTime: endMs },
    { reader } as unknown as OperationContext,
  );
  // One more turn, so a tick held up by the last slice is measured too.
  await new Promise<void>((resume) => setImmediate(resume));
  ticking = false;
  assert.ok(performance.now() - started >= 300, "the reads took their time");
  assert.equal((output.MetricDataResults as unknown[]).length, 60);
  // 60 reads of 5 ms run in slices of about 20 ms, never in one 300 ms block.
  assert.ok(longestGapMs < 100, `the event loop waited ${longestGapMs.toFixed(1)} ms`);
});

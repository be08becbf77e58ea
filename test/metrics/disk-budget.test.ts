import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import Database from "better-sqlite3";
import { pino } from "pino";
import { statisticValue } from "../../src/api/cloudwatch/operations.js";
import { silentLogger, type Logger } from "../../src/common/logger.js";
import { MAX_METRICS_DISK_MIB, MIN_METRICS_DISK_MIB, parseMetricsDiskBudget } from "../../src/config/options.js";
import { MinuteAggregator } from "../../src/metrics/aggregator.js";
import { decodeCustomBucket } from "../../src/metrics/bucket-encoding.js";
import type { DistributionCounters } from "../../src/metrics/distribution-counters.js";
import { addMetricsDatabaseMetrics } from "../../src/metrics/observability.js";
import { PrometheusCollector } from "../../src/metrics/prometheus.js";
import { MetricsReader, type StatisticsQuery } from "../../src/metrics/reader.js";
import { Sketch } from "../../src/metrics/sketch.js";
import type { StatSet } from "../../src/metrics/stat-set.js";
import { customSeriesKey, MetricsStore, RETENTION_TIERS, WAL_SIZE_LIMIT_BYTES } from "../../src/metrics/store.js";
import { PROTECTED_MINUTES_MS, type DiskBudgetStats } from "../../src/metrics/store-pruning.js";
import { worstCustomStats, worstDistributionCounters } from "../../bench/metrics/worst-case.js";
import { startHarness, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
const MIB = 1024 * 1024;
const REPO = join(import.meta.dirname, "..", "..");
const DISTRIBUTION = "E2DISKBUDGET01";
const DISTRIBUTION_DIMENSIONS = [
  { Name: "DistributionId", Value: DISTRIBUTION },
  { Name: "Region", Value: "Global" },
];

/** Returns a logger that keeps every JSON line it writes, for checks on warnings and errors. */
function capturingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log: Logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

/** Returns the bytes of metrics.db and of its WAL as the file system reports them now. */
function fileSizes(dataDir: string): { main: number; wal: number } {
  const path = join(dataDir, "metrics", "metrics.db");
  return { main: statSync(path).size, wal: statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0 };
}

function customItem(series: number, minuteStartMs: number, stats: StatSet) {
  return { namespace: "Portico/Budget", metricName: "Latency", dimensions: [{ Name: "Series", Value: String(series) }], unit: "Milliseconds", minuteStartMs, stats };
}

function customMetric(series: number) {
  return { namespace: "Portico/Budget", metricName: "Latency", dimensions: [{ Name: "Series", Value: String(series) }] };
}

describe("disk budget over simulated months", () => {
  // Two custom series and one distribution receive a largest-size bucket
  // (full histograms, float64 counts) every hour for 200 days, flushed and
  // rolled up every simulated hour through the aggregator.
  const BUDGET_BYTES = 7 * MIB;
  /** Slack over the budget: one flush's writes (three largest buckets) and rounding to pages, with room to spare. */
  const SLACK_BYTES = MIB;
  const DAYS = 200;
  const CUSTOM_SERIES = 2;
  const startMs = Date.UTC(2030, 0, 1);
  const clock = { nowMs: startMs };
  const customPool = Array.from({ length: 8 }, (_, i) => worstCustomStats(i));
  const distributionPool = Array.from({ length: 8 }, (_, i) => worstDistributionCounters(i));
  /** What was written at each hour, by series, for the checks on thinned buckets. */
  const written = new Map<number, StatSet>();
  let dataDir: string;
  let store: MetricsStore;
  let aggregator: MinuteAggregator;
  let reader: MetricsReader;
  let lines: Array<Record<string, unknown>>;
  let maxMainBytes = 0;
  let maxWalBytes = 0;
  let maxUsedBytes = 0;
  let stats: DiskBudgetStats;
  let durationMs = 0;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-disk-budget-"));
    const capture = capturingLogger();
    lines = capture.lines;
    store = new MetricsStore(dataDir, { log: capture.log, maxCustomSeries: 10, diskBudgetBytes: BUDGET_BYTES, now: () => clock.nowMs });
    aggregator = new MinuteAggregator({ store, log: capture.log, now: () => clock.nowMs });
    reader = new MetricsReader(store, aggregator);
    const started = performance.now();
    for (let hour = 0; hour < DAYS * 24; hour++) {
      const hourStartMs = startMs + hour * HOUR_MS;
      const custom = Array.from({ length: CUSTOM_SERIES }, (_, series) => customItem(series, hourStartMs, customPool[(hour + series) % 8]!));
      written.set(hourStartMs, customPool[hour % 8]!);
      store.addCustomMinutes(custom);
      aggregator.addMinute(DISTRIBUTION, hourStartMs, distributionPool[hour % 8]!);
      clock.nowMs = hourStartMs + HOUR_MS;
      aggregator.flush();
      const sizes = fileSizes(dataDir);
      maxMainBytes = Math.max(maxMainBytes, sizes.main);
      maxWalBytes = Math.max(maxWalBytes, sizes.wal);
      maxUsedBytes = Math.max(maxUsedBytes, store.diskStats().usedBytes);
    }
    durationMs = performance.now() - started;
    stats = store.diskStats();
  });
  after(async () => {
    store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("file stays within budget and slack", (t) => {
    t.diagnostic(
      `${DAYS} days in ${Math.round(durationMs)} ms: max used ${maxUsedBytes} bytes, max metrics.db ${maxMainBytes}, ` +
        `max WAL ${maxWalBytes}, budget ${BUDGET_BYTES}; pruned ${JSON.stringify(stats.pruned)} in ${stats.passes} passes, ` +
        `longest ${stats.maxPassMs.toFixed(1)} ms`,
    );
    assert.ok(maxUsedBytes <= BUDGET_BYTES + SLACK_BYTES, `pages in use reached ${maxUsedBytes}`);
    assert.ok(maxMainBytes <= BUDGET_BYTES + SLACK_BYTES, `metrics.db reached ${maxMainBytes}`);
    assert.ok(maxWalBytes <= WAL_SIZE_LIMIT_BYTES, `WAL reached ${maxWalBytes}`);
  });

  test("older buckets thinned, then deleted", () => {
    assert.ok(stats.pruned.thin_older > 0, JSON.stringify(stats.pruned));
    assert.ok(stats.pruned.delete_older > 0, JSON.stringify(stats.pruned));
    assert.equal(stats.pruned.thin_recent, 0);
    assert.equal(stats.pruned.delete_recent, 0);
  });

  test("last 15 days of minutes survive whole", () => {
    assert.equal(PROTECTED_MINUTES_MS, RETENTION_TIERS[0].keepForMs);
    const fromMs = clock.nowMs - PROTECTED_MINUTES_MS;
    const expectedHours = PROTECTED_MINUTES_MS / HOUR_MS;
    for (let series = 0; series < CUSTOM_SERIES; series++) {
      const buckets = store.readBuckets(customSeriesKey("Portico/Budget", "Latency", customMetric(series).dimensions, "Milliseconds"), fromMs, clock.nowMs);
      assert.equal(buckets.length, expectedHours, `series ${series}`);
      assert.ok(buckets.every((bucket) => bucket.resolutionSeconds === 60 && bucket.histograms !== null), `series ${series}`);
    }
    const query: StatisticsQuery = {
      metric: { namespace: "AWS/CloudFront", metricName: "OriginLatency", dimensions: DISTRIBUTION_DIMENSIONS },
      startMs: fromMs,
      endMs: clock.nowMs,
      periodSeconds: 3600,
      unit: undefined,
    };
    const periods = reader.statistics(query);
    assert.equal(periods.length, expectedHours);
    assert.ok(periods.every((period) => statisticValue(period.stats, "p99") !== undefined));
  });

  test("thinned buckets keep every other statistic", () => {
    // Hourly buckets from day 100 to 120 (80 to 100 days old): each contains one write, thinned.
    const fromMs = startMs + 100 * DAY_MS;
    const toMs = startMs + 120 * DAY_MS;
    const periods = reader.statistics({ metric: customMetric(0), startMs: fromMs, endMs: toMs, periodSeconds: 3600, unit: undefined });
    assert.equal(periods.length, 20 * 24);
    for (const period of periods) {
      const expected = written.get(period.timestampMs)!;
      assert.equal(statisticValue(period.stats, "SampleCount"), expected.sampleCount);
      assert.equal(statisticValue(period.stats, "Sum"), expected.sum);
      assert.equal(statisticValue(period.stats, "Average"), expected.sum / expected.sampleCount);
      assert.equal(statisticValue(period.stats, "Minimum"), expected.minimum);
      assert.equal(statisticValue(period.stats, "Maximum"), expected.maximum);
      assert.equal(statisticValue(period.stats, "p99"), undefined);
    }
  });

  test("pruning logged at warn with counts", () => {
    const warnings = lines.filter((line) => line.msg === "metrics database over its disk budget: pruned buckets older than 15 days");
    assert.ok(warnings.length > 0);
    assert.ok(warnings.every((line) => line.level === 40));
    const logged = warnings.reduce((sum, line) => sum + (line.thinnedOlderBuckets as number) + (line.deletedOlderBuckets as number), 0);
    assert.equal(logged, stats.pruned.thin_older + stats.pruned.delete_older);
    assert.equal(lines.filter((line) => (line.level as number) >= 50).length, 0);
  });

  test("longest pass stays short", () => {
    // The pass limit is 50 ms; one batch may run past it. 500 ms leaves room for a busy machine.
    assert.ok(stats.maxPassMs < 500, `longest pass ${stats.maxPassMs} ms`);
  });
});

/** Counts of buckets by where they stand in the pruning order, with the start times the order checks need. */
interface PruneState {
  olderWithHistograms: number;
  recentWithHistograms: number;
  recent: number;
  byResolution: Map<number, { count: number; minStartMs: number }>;
  /** Latest start among older buckets without histograms, and earliest among older buckets with them. */
  latestThinnedOlderMs: number;
  earliestWholeOlderMs: number;
  latestThinnedRecentMs: number;
  earliestWholeRecentMs: number;
}

function pruneState(store: MetricsStore, protectFromMs: number): PruneState {
  const older = `NOT (resolution_seconds = 60 AND bucket_start_ms >= ${protectFromMs})`;
  const recent = `resolution_seconds = 60 AND bucket_start_ms >= ${protectFromMs}`;
  const scalar = (sql: string) => store.db.prepare(sql).pluck().get() as number | null;
  const byResolution = new Map<number, { count: number; minStartMs: number }>();
  for (const row of store.db
    .prepare(`SELECT resolution_seconds AS resolution, COUNT(*) AS count, MIN(bucket_start_ms) AS minStartMs FROM buckets WHERE ${older} GROUP BY 1`)
    .all() as Array<{ resolution: number; count: number; minStartMs: number }>) {
    byResolution.set(row.resolution, { count: row.count, minStartMs: row.minStartMs });
  }
  return {
    olderWithHistograms: scalar(`SELECT COUNT(*) FROM buckets WHERE ${older} AND histograms IS NOT NULL`)!,
    recentWithHistograms: scalar(`SELECT COUNT(*) FROM buckets WHERE ${recent} AND histograms IS NOT NULL`)!,
    recent: scalar(`SELECT COUNT(*) FROM buckets WHERE ${recent}`)!,
    byResolution,
    latestThinnedOlderMs: scalar(`SELECT MAX(bucket_start_ms) FROM buckets WHERE ${older} AND histograms IS NULL`) ?? -Infinity,
    earliestWholeOlderMs: scalar(`SELECT MIN(bucket_start_ms) FROM buckets WHERE ${older} AND histograms IS NOT NULL`) ?? Infinity,
    latestThinnedRecentMs: scalar(`SELECT MAX(bucket_start_ms) FROM buckets WHERE ${recent} AND histograms IS NULL`) ?? -Infinity,
    earliestWholeRecentMs: scalar(`SELECT MIN(bucket_start_ms) FROM buckets WHERE ${recent} AND histograms IS NOT NULL`) ?? Infinity,
  };
}

/** Returns a statistic set of one sample, with a one-bin histogram. */
function oneSample(value: number): StatSet {
  return { sampleCount: 1, sum: value, minimum: value, maximum: value, sketch: Sketch.fromJson({ logarithmic: false, bins: [[value, 1]] }) };
}

/**
 * Writes custom series with a bucket every 30 minutes over the last 63 days
 * and every 4 hours from 63 to 400 days back, then rolls the older ones into
 * their tiers.
 */
function writeAllTiers(store: MetricsStore, nowMs: number, seriesCount = 2): void {
  const items: Array<ReturnType<typeof customItem>> = [];
  const add = (ageMs: number) => {
    const minuteStartMs = Math.floor((nowMs - ageMs) / MINUTE_MS) * MINUTE_MS;
    for (let series = 0; series < seriesCount; series++) items.push(customItem(series, minuteStartMs, oneSample(ageMs / HOUR_MS)));
  };
  for (let ageMs = 30 * MINUTE_MS; ageMs < 63 * DAY_MS; ageMs += 30 * MINUTE_MS) add(ageMs);
  for (let ageMs = 63 * DAY_MS; ageMs < 400 * DAY_MS; ageMs += 4 * HOUR_MS) add(ageMs);
  store.addCustomMinutes(items);
  const rolled = store.rollUp(nowMs);
  assert.equal(rolled.complete, true);
}

describe("pruning order", () => {
  const nowMs = Date.UTC(2031, 5, 1);
  const protectFromMs = nowMs - PROTECTED_MINUTES_MS;
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-prune-order-"));
    const store = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: 10, now: () => nowMs });
    writeAllTiers(store, nowMs);
    store.close();
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test("steps run oldest first, in order", () => {
    const capture = capturingLogger();
    // A budget of one byte prunes everything, one batch of 500 buckets per pass.
    const store = new MetricsStore(dataDir, { log: capture.log, maxCustomSeries: 10, diskBudgetBytes: 1, maxPassMs: 0, now: () => nowMs });
    const reader = new MetricsReader(store, new MinuteAggregator({ store, log: silentLogger(), now: () => nowMs }));
    try {
      const initial = pruneState(store, protectFromMs);
      assert.equal(initial.recent, 2 * 15 * 48);
      assert.equal(initial.recentWithHistograms, initial.recent);
      assert.ok(initial.byResolution.get(300)!.count > 500);
      assert.ok(initial.byResolution.get(3600)!.count > 500);
      let checkedMixedPeriod = false;
      let previous = initial;
      for (let pass = 1; ; pass++) {
        const result = store.enforceDiskBudget(nowMs);
        const state = pruneState(store, protectFromMs);
        const label = `pass ${pass}: ${JSON.stringify(result.pruned)}`;
        assert.ok(state.latestThinnedOlderMs <= state.earliestWholeOlderMs, `${label}: older thinned out of order`);
        assert.ok(state.latestThinnedRecentMs <= state.earliestWholeRecentMs, `${label}: recent thinned out of order`);
        if (state.recentWithHistograms < state.recent || state.recent < initial.recent) {
          assert.equal(state.byResolution.size, 0, `${label}: recent minutes pruned while older buckets remain`);
        }
        if (state.recent < initial.recent) assert.equal(state.recentWithHistograms, 0, `${label}: recent deleted before all were thinned`);
        const deletedOlder = [...initial.byResolution].some(([resolution, tier]) => (state.byResolution.get(resolution)?.count ?? 0) < tier.count);
        if (deletedOlder) assert.equal(state.olderWithHistograms, 0, `${label}: deleted before every older bucket was thinned`);
        const remaining = (resolution: number) => state.byResolution.get(resolution)?.count ?? 0;
        if (remaining(300) < initial.byResolution.get(300)!.count) assert.equal(remaining(3600), 0, `${label}: 5-minute before hourly`);
        // Within a tier, deletion keeps a suffix: the earliest remaining start only moves forward.
        for (const [resolution, tier] of state.byResolution) {
          assert.ok(tier.minStartMs >= (previous.byResolution.get(resolution)?.minStartMs ?? -Infinity), `${label}: tier ${resolution}`);
        }

        if (!checkedMixedPeriod && state.recentWithHistograms > 0 && state.recentWithHistograms < state.recent) {
          // A period that spans thinned and whole minutes: every sample is counted, but no percentile is given.
          const periods = reader.statistics({ metric: customMetric(0), startMs: protectFromMs, endMs: nowMs, periodSeconds: 15 * 86_400, unit: undefined });
          assert.equal(periods.length, 1);
          assert.equal(statisticValue(periods[0]!.stats, "SampleCount"), state.recent / 2);
          assert.equal(statisticValue(periods[0]!.stats, "p90"), undefined);
          checkedMixedPeriod = true;
        }
        previous = state;
        if (state.recent === 0 && state.byResolution.size === 0) break;
        assert.ok(pass < 100, "pruning did not finish");
      }
      assert.ok(checkedMixedPeriod);
      const totals = store.diskStats().pruned;
      assert.equal(totals.thin_recent, initial.recent);
      assert.equal(totals.delete_recent, initial.recent);
    } finally {
      store.close();
    }

    // The clock stood still, so the rate limit let one line through during the passes and close wrote the rest.
    const pruneLines = capture.lines.filter((line) => typeof line.thinnedOlderBuckets === "number");
    assert.equal(pruneLines.length, 2);
    assert.equal(pruneLines[1]!.level, 50);
    assert.match(pruneLines[1]!.msg as string, /cannot hold 15 days of minute data|no buckets left to prune/);
    const loggedRecent = pruneLines.reduce((sum, line) => sum + (line.deletedRecentBuckets as number), 0);
    assert.equal(loggedRecent, 2 * 15 * 48);
  });
});

interface StoredRow {
  data: string;
  histograms: string | null;
}

/** Returns every bucket row as hex text, keyed by series, resolution and start. */
function allRows(db: Database.Database): Map<string, StoredRow> {
  const rows = db
    .prepare(`SELECT series_id, resolution_seconds, bucket_start_ms, hex(data) AS data, hex(histograms) AS histograms FROM buckets`)
    .all() as Array<{ series_id: number; resolution_seconds: number; bucket_start_ms: number; data: string; histograms: string | null }>;
  return new Map(rows.map((row) => [`${row.series_id}/${row.resolution_seconds}/${row.bucket_start_ms}`, { data: row.data, histograms: row.histograms || null }]));
}

describe("pass time limit", () => {
  const nowMs = Date.UTC(2031, 5, 1);
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-prune-pass-"));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test("large backlog pruned in bounded passes", (t) => {
    const store = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: 10, now: () => nowMs });
    writeAllTiers(store, nowMs, 8);
    store.addCustomMinutes(
      Array.from({ length: 2_000 }, (_, i) => customItem(9, nowMs - (i + 1) * 30 * MINUTE_MS, worstCustomStats(i % 5))),
    );
    store.close();

    // The default pass limit, 50 ms, against a budget of one byte: far more work than one pass may do.
    const pruning = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: 10, diskBudgetBytes: 1, now: () => nowMs });
    try {
      const durations: number[] = [];
      let complete = false;
      while (!complete && durations.length < 100) {
        const started = performance.now();
        complete = pruning.enforceDiskBudget(nowMs).complete;
        durations.push(performance.now() - started);
      }
      const pruned = pruning.diskStats().pruned;
      t.diagnostic(`${durations.length} passes for ${JSON.stringify(pruned)}; longest ${Math.max(...durations).toFixed(1)} ms`);
      assert.ok(durations.length > 1, "one pass did all the work");
      assert.ok(complete, "pruning did not finish in 100 passes");
      // One batch may run past the limit; 250 ms leaves room for a busy machine.
      assert.ok(Math.max(...durations) < 250, `longest pass ${Math.max(...durations)} ms`);
    } finally {
      pruning.close();
    }
  });
});

describe("restart in the middle of pruning", () => {
  const nowMs = Date.UTC(2031, 5, 1);
  const protectFromMs = nowMs - PROTECTED_MINUTES_MS;
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-prune-restart-"));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test("SIGKILL loses only pruned data", async () => {
    const store = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: 10, now: () => nowMs });
    writeAllTiers(store, nowMs);
    // One series of largest-size buckets every 6 hours over the last 63 days, so rows span overflow pages too.
    const large = [];
    for (let ageMs = HOUR_MS; ageMs < 63 * DAY_MS; ageMs += 6 * HOUR_MS) {
      large.push(customItem(7, Math.floor((nowMs - ageMs) / MINUTE_MS) * MINUTE_MS, worstCustomStats(ageMs % 13)));
    }
    store.addCustomMinutes(large);
    assert.equal(store.rollUp(nowMs).complete, true);
    const originalRows = allRows(store.db);
    const initialState = pruneState(store, protectFromMs);
    const usedBytes = store.diskStats().usedBytes;
    store.close();
    // Half the size takes thinning every older histogram and some deletions, while the last 15 days still fit.
    const budgetBytes = Math.floor(usedBytes / 2);

    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "test", "metrics", "prune-child.ts"), dataDir, String(nowMs), String(budgetBytes)], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    let passes = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.startsWith("pass ")) passes += 1;
      if (passes === 5) {
        child.kill("SIGKILL");
        break;
      }
      assert.notEqual(line, "done", "pruning finished before the kill");
    }
    assert.equal(await exited, "SIGKILL");

    const check = (db: Database.Database, label: string) => {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok", label);
      for (const [key, row] of allRows(db)) {
        const original = originalRows.get(key);
        assert.ok(original !== undefined, `${label}: ${key} is new`);
        assert.equal(row.data, original.data, `${label}: ${key} data changed`);
        if (row.histograms !== null) assert.equal(row.histograms, original.histograms, `${label}: ${key} histograms changed`);
      }
    };
    const reopened = new MetricsStore(dataDir, {
      log: silentLogger(),
      maxCustomSeries: 10,
      diskBudgetBytes: budgetBytes,
      maxPassMs: 0,
      now: () => nowMs,
    });
    try {
      check(reopened.db, "after the kill");
      const killedState = pruneState(reopened, protectFromMs);
      assert.ok(killedState.olderWithHistograms < initialState.olderWithHistograms, "nothing was pruned before the kill");
      assert.ok(killedState.latestThinnedOlderMs <= killedState.earliestWholeOlderMs);

      // Pruning goes on from where the killed process stopped.
      let pruned = 0;
      for (let pass = 0; pass < 100; pass++) {
        const result = reopened.enforceDiskBudget(nowMs);
        pruned += Object.values(result.pruned).reduce((sum, count) => sum + count, 0);
        if (result.complete && reopened.diskStats().usedBytes <= budgetBytes) break;
      }
      assert.ok(pruned > 0, "the killed process had already finished");
      assert.ok(reopened.diskStats().usedBytes <= budgetBytes);
      check(reopened.db, "after pruning finished");
      const finalState = pruneState(reopened, protectFromMs);
      assert.equal(finalState.recentWithHistograms, finalState.recent, "recent minutes were pruned");
      assert.equal(finalState.recent, initialState.recent, "recent minutes were deleted");
      assert.ok(reopened.diskStats().pruned.delete_older > 0, JSON.stringify(reopened.diskStats().pruned));
    } finally {
      reopened.close();
    }
  });
});

describe("thinned buckets over the wire", () => {
  let harness: Harness;

  before(async () => {
    harness = await startHarness();
  });
  after(() => harness.close());

  test("percentiles absent, other statistics kept", async () => {
    // Minutes of 20 days ago, older than the 15 days pruning spares.
    const startMs = Math.floor((Date.now() - 20 * DAY_MS) / (5 * MINUTE_MS)) * 5 * MINUTE_MS;
    const values = [4, 8, 15, 16, 23, 42];
    harness.metrics.reader.putMetricData(
      "Portico/Thinned",
      values.map((value, i) => ({ metricName: "Depth", dimensions: [], timestampMs: startMs + (i % 3) * MINUTE_MS, unit: "Count", stats: oneSample(value) })),
    );
    const request = (extended: boolean) =>
      harness.client().send(
        new GetMetricStatisticsCommand({
          Namespace: "Portico/Thinned",
          MetricName: "Depth",
          StartTime: new Date(startMs),
          EndTime: new Date(startMs + 5 * MINUTE_MS),
          Period: 300,
          ...(extended ? { ExtendedStatistics: ["p50", "p99"] } : { Statistics: ["SampleCount", "Sum", "Average", "Minimum", "Maximum"] }),
        }),
      );
    const whole = await request(true);
    assert.deepEqual(whole.Datapoints?.[0]?.ExtendedStatistics, { p50: 15, p99: 42 });

    // Do what the thin steps do, from a second connection: set the histograms column to NULL.
    const db = new Database(join(harness.dataDir, "metrics", "metrics.db"));
    try {
      assert.equal(db.prepare(`UPDATE buckets SET histograms = NULL`).run().changes, 3);
    } finally {
      db.close();
    }

    const thinned = await request(true);
    assert.equal(thinned.Datapoints?.length, 1);
    assert.equal(thinned.Datapoints![0]!.ExtendedStatistics, undefined);
    const basic = await request(false);
    assert.equal(basic.Datapoints?.length, 1);
    const point = basic.Datapoints![0]!;
    assert.equal(point.SampleCount, 6);
    assert.equal(point.Sum, 108);
    assert.equal(point.Average, 18);
    assert.equal(point.Minimum, 4);
    assert.equal(point.Maximum, 42);
  });
});

describe("--metrics-disk-mb", () => {
  test("valid values parse to bytes", () => {
    assert.equal(parseMetricsDiskBudget(String(MIN_METRICS_DISK_MIB)), MIN_METRICS_DISK_MIB * MIB);
    assert.equal(parseMetricsDiskBudget("1024"), 1024 * MIB);
    assert.equal(parseMetricsDiskBudget(String(MAX_METRICS_DISK_MIB)), MAX_METRICS_DISK_MIB * MIB);
  });

  test("bad values rejected with the range", () => {
    for (const value of ["", "0", "15", "-1", "1.5", "1e3", "abc", "1GB", " 64", "0x40", String(MAX_METRICS_DISK_MIB + 1)]) {
      assert.throws(
        () => parseMetricsDiskBudget(value),
        { message: `invalid --metrics-disk-mb '${value}': expected a whole number of MiB from 16 to 16777216` },
        `value '${value}'`,
      );
    }
  });

  test("portico up stops on a bad value", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "portico-disk-flag-"));
    try {
      const run = (args: string[], env: Record<string, string> = {}) =>
        spawnSync(process.execPath, ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), "up", "--data-dir", dataDir, "--api-port", "0", "--http-port", "0", "--https-port", "0", ...args], {
          cwd: REPO,
          env: { ...process.env, ...env },
          encoding: "utf8",
          timeout: 60_000,
        });
      const flag = run(["--metrics-disk-mb", "1GB"]);
      assert.equal(flag.status, 1);
      assert.match(flag.stderr, /invalid --metrics-disk-mb '1GB': expected a whole number of MiB from 16 to 16777216/);
      const env = run([], { PORTICO_METRICS_DISK_MB: "8" });
      assert.equal(env.status, 1);
      assert.match(env.stderr, /invalid --metrics-disk-mb '8'/);
      const help = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), "up", "--help"], {
        cwd: REPO,
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.match(help.stdout, /--metrics-disk-mb <MiB>/);
      assert.match(help.stdout, /PORTICO_METRICS_DISK_MB/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("metrics database Prometheus metrics", () => {
  test("size, budget and pruning exported", () => {
    const prometheus = new PrometheusCollector();
    const stats: DiskBudgetStats = {
      budgetBytes: 1024 * MIB,
      usedBytes: 1000,
      walBytes: 2000,
      pruned: { thin_older: 5, delete_older: 4, thin_recent: 3, delete_recent: 2 },
      passes: 7,
      maxPassMs: 12.5,
    };
    addMetricsDatabaseMetrics(prometheus, () => stats);
    const text = prometheus.render();
    for (const line of [
      "# TYPE portico_metrics_db_used_bytes gauge",
      "portico_metrics_db_used_bytes 1000",
      "portico_metrics_db_wal_bytes 2000",
      `portico_metrics_db_budget_bytes ${1024 * MIB}`,
      "# TYPE portico_metrics_db_pruned_buckets_total counter",
      'portico_metrics_db_pruned_buckets_total{step="thin_older"} 5',
      'portico_metrics_db_pruned_buckets_total{step="delete_older"} 4',
      'portico_metrics_db_pruned_buckets_total{step="thin_recent"} 3',
      'portico_metrics_db_pruned_buckets_total{step="delete_recent"} 2',
      "portico_metrics_db_prune_passes_total 7",
      "portico_metrics_db_prune_pass_max_seconds 0.0125",
    ]) {
      assert.ok(text.split("\n").includes(line), `missing: ${line}`);
    }
  });
});

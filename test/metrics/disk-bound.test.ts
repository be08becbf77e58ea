import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { silentLogger } from "../../src/common/logger.js";
import { MinuteAggregator } from "../../src/metrics/aggregator.js";
import { decodeCustomBucket } from "../../src/metrics/bucket-encoding.js";
import { countersToJson, emptyCounters } from "../../src/metrics/distribution-counters.js";
import { MetricsReader } from "../../src/metrics/reader.js";
import { addSample, emptyStatSet, statSetToJson } from "../../src/metrics/stat-set.js";
import { customSeriesKey, distributionSeriesKey, maxBucketsPerSeries, MetricsStore } from "../../src/metrics/store.js";
import { requestRecord } from "./harness.js";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 3600 * 1000;
const DISTRIBUTION = "E2DISKBOUND001";

function fileBytes(store: MetricsStore, dataDir: string): number {
  store.db.pragma("wal_checkpoint(TRUNCATE)");
  return statSync(join(dataDir, "metrics", "metrics.db")).size;
}

function bucketsPerSeries(store: MetricsStore): number[] {
  const rows = store.db.prepare(`SELECT COUNT(*) AS count FROM buckets GROUP BY series_id`).all() as Array<{ count: number }>;
  return rows.map((row) => row.count);
}

describe("metrics database over simulated months", () => {
  let dataDir: string;
  let store: MetricsStore;
  let aggregator: MinuteAggregator;
  const clock = { nowMs: Date.UTC(2030, 0, 1) };
  const startMs = clock.nowMs;
  const sizes = new Map<number, number>();
  const bucketCounts = new Map<number, number[]>();

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-disk-bound-"));
    store = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: 10 });
    aggregator = new MinuteAggregator({ store, log: silentLogger(), now: () => clock.nowMs });
    // 520 days of one request and one custom value every minute, flushed
    // (and so rolled up) once per simulated day.
    for (let day = 0; day < 520; day++) {
      const custom = [];
      for (let minute = 0; minute < 1440; minute++) {
        const minuteStartMs = startMs + day * DAY_MS + minute * MINUTE_MS;
        aggregator.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: minuteStartMs + 1000, originLatencyMs: minute % 17 }));
        const stats = emptyStatSet(true);
        addSample(stats, minute % 13);
        custom.push({ namespace: "Portico/Bound", metricName: "Depth", dimensions: [], unit: "Count", minuteStartMs, stats });
      }
      store.addCustomMinutes(custom);
      clock.nowMs = startMs + (day + 1) * DAY_MS;
      aggregator.flush();
      if (day === 470 || day === 519) {
        sizes.set(day, fileBytes(store, dataDir));
        bucketCounts.set(day, bucketsPerSeries(store));
      }
    }
  });
  after(async () => {
    store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("buckets per series stay within the tiers", () => {
    for (const [day, counts] of bucketCounts) {
      assert.equal(counts.length, 2, `day ${day}`);
      for (const count of counts) assert.ok(count <= maxBucketsPerSeries(), `day ${day}: ${count} buckets`);
    }
  });

  test("file stops growing once retention runs", (t) => {
    const early = sizes.get(470)!;
    const late = sizes.get(519)!;
    t.diagnostic(`metrics.db: ${early} bytes at day 470, ${late} at day 519, ${Math.round(late / 2 / maxBucketsPerSeries())} bytes per bucket`);
    assert.ok(late <= early * 1.02, `grew from ${early} to ${late} bytes`);
  });

  test("database stays WAL with incremental vacuum", () => {
    assert.equal(store.db.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(store.db.pragma("auto_vacuum", { simple: true }), 2);
  });

  test("expired series free their space", () => {
    const before = fileBytes(store, dataDir);
    // No data for longer than the last tier keeps: every series expires.
    clock.nowMs += 460 * DAY_MS;
    // One roll-up returns at most 8 MiB of free pages; the next flushes go on with the rest.
    for (let flush = 0; flush < 4; flush++) aggregator.flush();
    assert.equal(store.seriesCount("custom"), 0);
    assert.equal(store.seriesCount("distribution"), 0);
    const afterBytes = fileBytes(store, dataDir);
    // What is left is the schema and the reserved free pages (1 MiB).
    assert.ok(afterBytes < 1.5 * 1024 * 1024, `${afterBytes} bytes left of ${before}`);
  });
});

describe("metrics database limits", () => {
  let dataDir: string;
  let store: MetricsStore;
  const minuteStartMs = Date.UTC(2030, 0, 1);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-series-limit-"));
    store = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: 3 });
  });
  after(async () => {
    store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const item = (name: string, value: number) => {
    const stats = emptyStatSet(true);
    addSample(stats, value);
    return { namespace: "Portico/Limit", metricName: name, dimensions: [], unit: "None", minuteStartMs, stats };
  };

  test("custom series past the cap rejected whole", () => {
    store.addCustomMinutes([item("a", 1), item("b", 1), item("c", 1)]);
    assert.throws(() => store.addCustomMinutes([item("a", 5), item("d", 1)]), { name: "SeriesLimitError" });
    assert.equal(store.seriesCount("custom"), 3);
    // The rejected request left the existing series' bucket as it was.
    const buckets = store.readBuckets(customSeriesKey("Portico/Limit", "a", [], "None"), minuteStartMs, minuteStartMs + MINUTE_MS);
    assert.equal(decodeCustomBucket(buckets[0]!).sum, 1);
    // Existing series still take data.
    store.addCustomMinutes([item("a", 2), item("c", 2)]);
    assert.equal(store.seriesCount("custom"), 3);
  });
});

describe("metrics database from schema version 0", () => {
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-schema-v0-"));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test("old rows migrate and stay readable", async () => {
    const minuteStartMs = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 10 * MINUTE_MS;
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dataDir, "metrics"));
    // The schema this store used before series ids, without auto-vacuum.
    const old = new Database(join(dataDir, "metrics", "metrics.db"));
    old.pragma("journal_mode = WAL");
    old.exec(`
      CREATE TABLE series (series_key TEXT PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL,
        metric_name TEXT NOT NULL, dimensions TEXT NOT NULL, unit TEXT NOT NULL, last_timestamp_ms INTEGER NOT NULL);
      CREATE INDEX series_by_name ON series (namespace, metric_name);
      CREATE TABLE buckets (series_key TEXT NOT NULL, resolution_seconds INTEGER NOT NULL, bucket_start_ms INTEGER NOT NULL,
        data TEXT NOT NULL, PRIMARY KEY (series_key, resolution_seconds, bucket_start_ms)) WITHOUT ROWID;
      CREATE INDEX buckets_by_age ON buckets (resolution_seconds, bucket_start_ms);
    `);
    const counters = emptyCounters();
    counters.requests = 42;
    const stats = emptyStatSet(true);
    addSample(stats, 7);
    const insertSeries = old.prepare(`INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const insertBucket = old.prepare(`INSERT INTO buckets VALUES (?, 60, ?, ?)`);
    const distributionKey = distributionSeriesKey(DISTRIBUTION);
    const dimensions = [{ Name: "DistributionId", Value: DISTRIBUTION }, { Name: "Region", Value: "Global" }];
    insertSeries.run(distributionKey, "distribution", "AWS/CloudFront", "", JSON.stringify(dimensions), "", minuteStartMs);
    insertBucket.run(distributionKey, minuteStartMs, JSON.stringify(countersToJson(counters)));
    const customKey = customSeriesKey("Portico/Old", "Depth", [], "Count");
    insertSeries.run(customKey, "custom", "Portico/Old", "Depth", "[]", "Count", minuteStartMs);
    insertBucket.run(customKey, minuteStartMs, JSON.stringify(statSetToJson(stats)));
    old.close();

    const store = new MetricsStore(dataDir, { log: silentLogger() });
    try {
      assert.equal(store.db.pragma("user_version", { simple: true }), 2);
      assert.equal(store.db.pragma("auto_vacuum", { simple: true }), 2);
      assert.equal(store.db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(store.seriesCount("distribution"), 1);
      assert.equal(store.seriesCount("custom"), 1);
      const reader = new MetricsReader(store, new MinuteAggregator({ store, log: silentLogger() }));
      const query = (namespace: string, metricName: string, dims: typeof dimensions) =>
        reader.statistics({
          metric: { namespace, metricName, dimensions: dims },
          startMs: minuteStartMs,
          endMs: minuteStartMs + MINUTE_MS,
          periodSeconds: 60,
          unit: undefined,
        });
      assert.equal(query("AWS/CloudFront", "Requests", dimensions)[0]?.stats.sum, 42);
      assert.equal(query("Portico/Old", "Depth", [])[0]?.stats.sum, 7);
    } finally {
      store.close();
    }
  });
});

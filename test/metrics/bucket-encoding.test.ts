import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { silentLogger } from "../../src/common/logger.js";
import {
  ByteReader,
  ByteWriter,
  decodeCustomBucket,
  decodeDistributionBucket,
  encodeCustomBucket,
  encodeDistributionBucket,
} from "../../src/metrics/bucket-encoding.js";
import { countersToJson, emptyCounters } from "../../src/metrics/distribution-counters.js";
import { Sketch } from "../../src/metrics/sketch.js";
import { addSample, emptyStatSet, statSetPercentile, statSetToJson, type StatSet } from "../../src/metrics/stat-set.js";
import { customSeriesKey, distributionSeriesKey, MetricsStore } from "../../src/metrics/store.js";
import { fullExactStats, fullLogarithmicStats, worstCustomStats, worstDistributionCounters } from "../../bench/metrics/worst-case.js";

const MINUTE_MS = 60_000;

/** Returns the JSON form with bins sorted, since the binary form stores them in value order. */
function canonical(set: StatSet): string {
  const json = statSetToJson(set);
  json.sketch?.bins.sort((a, b) => a[0] - b[0]);
  return JSON.stringify(json);
}

function encodedBytes(encoded: { data: Buffer; histograms: Buffer | null }): number {
  return encoded.data.length + (encoded.histograms?.length ?? 0);
}

describe("bucket encoding", () => {
  test("numbers round trip exactly", () => {
    const values = [0, -0, 1, -1, 63, 64, -64, 127, 128, 2 ** 50, -(2 ** 50), 2 ** 50 + 2, Number.MAX_SAFE_INTEGER, 1.5, -2.25,
      1e308, 5e-324, Infinity, -Infinity, NaN, 0.1 + 0.2];
    const writer = new ByteWriter();
    for (const value of values) writer.number(value);
    const reader = new ByteReader(writer.finish());
    for (const value of values) assert.ok(Object.is(reader.number(), value), `value ${value}`);
    assert.equal(reader.remaining, 0);
  });

  test("small whole numbers take one byte", () => {
    for (const value of [-32, 0, 31]) {
      const writer = new ByteWriter();
      writer.number(value);
      assert.equal(writer.finish().length, 1, `value ${value}`);
    }
  });

  test("custom bucket round trips", () => {
    const cases: Array<[string, StatSet]> = [
      ["exact histogram", fullExactStats(1)],
      ["logarithmic histogram", fullLogarithmicStats(1)],
      ["fractional counts", (() => {
        const set = emptyStatSet(true);
        addSample(set, 3.5, 0.25);
        addSample(set, -7, 1.5);
        return set;
      })()],
      ["no histogram", { sampleCount: 10, sum: 55.5, minimum: -1, maximum: 20, sketch: undefined }],
    ];
    for (const [name, set] of cases) {
      const decoded = decodeCustomBucket(encodeCustomBucket(set));
      assert.equal(canonical(decoded), canonical(set), name);
      assert.equal(statSetPercentile(decoded, 0.99), statSetPercentile(set, 0.99), name);
    }
  });

  test("empty set comes back without a histogram", () => {
    // An empty histogram is not stored; merging treats an empty set without one the same way.
    const decoded = decodeCustomBucket(encodeCustomBucket(emptyStatSet(true)));
    assert.deepEqual(decoded, { ...emptyStatSet(false) });
  });

  test("bins outside the bin grid keep their values", () => {
    // A logarithmic sketch whose bins are not this build's representatives, as a JSON row from another build might contain.
    const sketch = Sketch.fromJson({ logarithmic: true, bins: [[1.2345, 3], [-9.87, 2], [0, 1]] });
    const set: StatSet = { sampleCount: 6, sum: 0, minimum: -10, maximum: 2, sketch };
    assert.equal(canonical(decodeCustomBucket(encodeCustomBucket(set))), canonical(set));
  });

  test("distribution bucket round trips", () => {
    const counters = worstDistributionCounters(4);
    const decoded = decodeDistributionBucket(encodeDistributionBucket(counters));
    const sortBins = (json: ReturnType<typeof countersToJson>) => {
      json.originLatencyMs.sketch?.bins.sort((a, b) => a[0] - b[0]);
      return json;
    };
    assert.deepEqual(sortBins(countersToJson(decoded)), sortBins(countersToJson(counters)));
    const empty = decodeDistributionBucket(encodeDistributionBucket(emptyCounters()));
    assert.equal(empty.requests, 0);
    assert.equal(empty.originLatencyMs.minimum, Infinity);
  });

  test("no histograms leave the column null", () => {
    const counters = emptyCounters();
    counters.requests = 3;
    assert.equal(encodeDistributionBucket(counters).histograms, null);
    assert.equal(encodeCustomBucket({ sampleCount: 1, sum: 1, minimum: 1, maximum: 1, sketch: undefined }).histograms, null);
  });

  test("JSON rows still decode", () => {
    const set = fullExactStats(2);
    const decoded = decodeCustomBucket({ data: JSON.stringify(statSetToJson(set)), histograms: null });
    assert.equal(canonical(decoded), canonical(set));
    const counters = worstDistributionCounters(2);
    const decodedCounters = decodeDistributionBucket({ data: JSON.stringify(countersToJson(counters)), histograms: null });
    assert.equal(decodedCounters.requests, counters.requests);
  });

  test("bad blobs are rejected", () => {
    const encoded = encodeCustomBucket(fullExactStats(1));
    assert.throws(() => decodeCustomBucket({ data: encoded.data.subarray(0, 3), histograms: null }), /ends early/);
    assert.throws(() => decodeCustomBucket({ data: encoded.data, histograms: encoded.histograms!.subarray(0, 100) }), /ends early/);
    const unknown = Buffer.from(encoded.data);
    unknown[0] = 9;
    assert.throws(() => decodeCustomBucket({ data: unknown, histograms: null }), /encoding 9 is unknown/);
  });

  test("largest buckets shrink to a fifth", (t) => {
    const custom = worstCustomStats(1);
    const customJson = JSON.stringify(statSetToJson(custom)).length;
    const customBinary = encodedBytes(encodeCustomBucket(custom));
    const distribution = worstDistributionCounters(1);
    const distributionJson = JSON.stringify(countersToJson(distribution)).length;
    const distributionBinary = encodedBytes(encodeDistributionBucket(distribution));
    t.diagnostic(`custom ${customJson} -> ${customBinary} bytes, distribution ${distributionJson} -> ${distributionBinary} bytes`);
    assert.ok(customBinary * 4 < customJson, `custom: ${customBinary} of ${customJson}`);
    assert.ok(distributionBinary * 4 < distributionJson, `distribution: ${distributionBinary} of ${distributionJson}`);
  });
});

/** Creates a metrics.db of schema version 1 (JSON buckets) with `minutes` minutes of one custom and one distribution series. */
function writeVersion1Database(dataDir: string, startMs: number, minutes: number): void {
  mkdirSync(join(dataDir, "metrics"), { recursive: true });
  const db = new Database(join(dataDir, "metrics", "metrics.db"));
  db.pragma("auto_vacuum = INCREMENTAL");
  db.pragma("journal_mode = WAL");
  db.exec(`
    CREATE TABLE series (series_id INTEGER PRIMARY KEY, series_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
      namespace TEXT NOT NULL, metric_name TEXT NOT NULL, dimensions TEXT NOT NULL, unit TEXT NOT NULL,
      last_timestamp_ms INTEGER NOT NULL);
    CREATE INDEX series_by_name ON series (namespace, metric_name);
    CREATE INDEX series_by_age ON series (last_timestamp_ms);
    CREATE TABLE buckets (series_id INTEGER NOT NULL, resolution_seconds INTEGER NOT NULL, bucket_start_ms INTEGER NOT NULL,
      data TEXT NOT NULL, PRIMARY KEY (series_id, resolution_seconds, bucket_start_ms)) WITHOUT ROWID;
    CREATE INDEX buckets_by_age ON buckets (resolution_seconds, bucket_start_ms);
  `);
  const lastMs = startMs + (minutes - 1) * MINUTE_MS;
  const dimensions = JSON.stringify([{ Name: "DistributionId", Value: "E2JSONROWS0001" }, { Name: "Region", Value: "Global" }]);
  const insertSeries = db.prepare(`INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  insertSeries.run(1, distributionSeriesKey("E2JSONROWS0001"), "distribution", "AWS/CloudFront", "", dimensions, "", lastMs);
  insertSeries.run(2, customSeriesKey("Portico/Json", "Depth", [], "Count"), "custom", "Portico/Json", "Depth", "[]", "Count", lastMs);
  const insertBucket = db.prepare(`INSERT INTO buckets VALUES (?, 60, ?, ?)`);
  db.transaction(() => {
    for (let minute = 0; minute < minutes; minute++) {
      const minuteStartMs = startMs + minute * MINUTE_MS;
      insertBucket.run(1, minuteStartMs, JSON.stringify(countersToJson(worstDistributionCounters(minute))));
      insertBucket.run(2, minuteStartMs, JSON.stringify(statSetToJson(fullExactStats(minute))));
    }
  })();
  db.pragma("user_version = 1");
  db.close();
}

/** Returns every bucket of both series decoded, keyed by series and start, in a canonical JSON form. */
function snapshot(store: MetricsStore, startMs: number, minutes: number): Map<string, string> {
  const result = new Map<string, string>();
  const endMs = startMs + minutes * MINUTE_MS;
  for (const bucket of store.readBuckets(distributionSeriesKey("E2JSONROWS0001"), startMs, endMs)) {
    const json = countersToJson(decodeDistributionBucket(bucket));
    json.originLatencyMs.sketch?.bins.sort((a, b) => a[0] - b[0]);
    result.set(`distribution ${bucket.bucketStartMs}`, JSON.stringify(json));
  }
  for (const bucket of store.readBuckets(customSeriesKey("Portico/Json", "Depth", [], "Count"), startMs, endMs)) {
    result.set(`custom ${bucket.bucketStartMs}`, canonical(decodeCustomBucket(bucket)));
  }
  return result;
}

describe("metrics database from schema version 1", () => {
  let dataDir: string;
  const startMs = Date.UTC(2030, 0, 1);
  const minutes = 600;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-schema-v1-"));
    writeVersion1Database(dataDir, startMs, minutes);
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test("JSON rows convert in passes across a restart", () => {
    const nowMs = startMs + minutes * MINUTE_MS;
    const open = (diskBudgetBytes?: number) =>
      new MetricsStore(dataDir, { log: silentLogger(), maxPassMs: 0, now: () => nowMs, ...(diskBudgetBytes ? { diskBudgetBytes } : {}) });
    let store = open(1);
    let before: Map<string, string>;
    try {
      assert.equal(store.db.pragma("user_version", { simple: true }), 2);
      before = snapshot(store, startMs, minutes);
      assert.equal(before.size, 2 * minutes);
      // A pass with no time left converts one batch of 500 and stops.
      const first = store.rollUp(nowMs);
      assert.equal(first.convertedRows, 500);
      assert.equal(first.complete, false);
      // The budget of one byte is not enforced while JSON rows remain.
      assert.deepEqual(first.pruned, { thin_older: 0, delete_older: 0, thin_recent: 0, delete_recent: 0 });
    } finally {
      store.close();
    }

    store = open();
    try {
      const second = store.rollUp(nowMs);
      assert.equal(second.convertedRows, 500);
      const third = store.rollUp(nowMs);
      assert.equal(third.convertedRows, 200);
      const kinds = store.db.prepare(`SELECT typeof(data) AS type, COUNT(*) AS count FROM buckets GROUP BY 1`).all();
      assert.deepEqual(kinds, [{ type: "blob", count: 2 * minutes }]);
      assert.deepEqual(snapshot(store, startMs, minutes), before);
      assert.equal(store.db.prepare(`SELECT name FROM sqlite_master WHERE name = 'json_bucket_conversion'`).get(), undefined);
    } finally {
      store.close();
    }

    // With every row converted, the budget applies again.
    store = open(1);
    try {
      assert.ok(store.enforceDiskBudget(nowMs).pruned.thin_recent > 0);
    } finally {
      store.close();
    }
  });
});

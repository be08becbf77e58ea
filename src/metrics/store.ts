import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Statement } from "better-sqlite3";
import { openDatabase, type SqliteDatabase } from "../common/sqlite.js";
import {
  countersFromJson,
  countersToJson,
  mergeCounters,
  type DistributionCounters,
} from "./distribution-counters.js";
import { mergeStatSet, statSetFromJson, statSetToJson, type StatSet } from "./stat-set.js";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 3600 * 1000;

/**
 * Retention tiers, after CloudWatch's published retention: 1-minute data for
 * 15 days, 5-minute data for 63 days and 1-hour data for 455 days. A bucket
 * older than a tier's age is merged into the next tier's bucket; hourly
 * buckets older than 455 days are deleted.
 */
export const RETENTION_TIERS = [
  { resolutionSeconds: 60, keepForMs: 15 * DAY_MS },
  { resolutionSeconds: 300, keepForMs: 63 * DAY_MS },
  { resolutionSeconds: 3600, keepForMs: 455 * DAY_MS },
] as const;

/** Rows read per roll-up batch, which bounds the work done in one flush. */
const ROLLUP_BATCH_ROWS = 20_000;

export type SeriesKind = "distribution" | "custom";

export interface Dimension {
  Name: string;
  Value: string;
}

/** One stored series: a distribution (all its CloudFront metrics) or one custom metric and unit. */
export interface SeriesRow {
  seriesKey: string;
  kind: SeriesKind;
  namespace: string;
  metricName: string;
  dimensions: Dimension[];
  unit: string;
  lastTimestampMs: number;
}

export interface StoredBucket {
  resolutionSeconds: number;
  bucketStartMs: number;
  data: string;
}

interface BucketCodec<T> {
  parse(data: string): T;
  merge(target: T, source: T): void;
  serialize(value: T): string;
}

const DISTRIBUTION_CODEC: BucketCodec<DistributionCounters> = {
  parse: (data) => countersFromJson(JSON.parse(data)),
  merge: mergeCounters,
  serialize: (value) => JSON.stringify(countersToJson(value)),
};

const CUSTOM_CODEC: BucketCodec<StatSet> = {
  parse: (data) => statSetFromJson(JSON.parse(data)),
  merge: mergeStatSet,
  serialize: (value) => JSON.stringify(statSetToJson(value)),
};

const CODECS: Record<SeriesKind, BucketCodec<never>> = {
  distribution: DISTRIBUTION_CODEC as BucketCodec<never>,
  custom: CUSTOM_CODEC as BucketCodec<never>,
};

export function distributionSeriesKey(distributionId: string): string {
  return `distribution:${distributionId}`;
}

/** Sorts dimensions by name so that one metric has one stored key whatever order a client sends. */
export function canonicalDimensions(dimensions: Dimension[]): Dimension[] {
  return [...dimensions].sort((a, b) => {
    if (a.Name === b.Name) return 0;
    return a.Name < b.Name ? -1 : 1;
  });
}

export function customSeriesKey(namespace: string, metricName: string, dimensions: Dimension[], unit: string): string {
  const dims = canonicalDimensions(dimensions).map((d) => [d.Name, d.Value]);
  return JSON.stringify(["custom", namespace, metricName, dims, unit]);
}

/** SQLite storage of metric buckets at `<dataDir>/metrics/metrics.db`. */
export class MetricsStore {
  readonly db: SqliteDatabase;
  private readonly statements = new Map<string, Statement>();

  constructor(dataDir: string) {
    const folder = join(dataDir, "metrics");
    mkdirSync(folder, { recursive: true });
    // NORMAL: a process crash loses nothing; power loss may lose the last
    // few seconds of counts, which metrics can afford.
    this.db = openDatabase(join(folder, "metrics.db"), { synchronous: "NORMAL" });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS series (
        series_key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        metric_name TEXT NOT NULL,
        dimensions TEXT NOT NULL,
        unit TEXT NOT NULL,
        last_timestamp_ms INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS series_by_name ON series (namespace, metric_name);
      CREATE TABLE IF NOT EXISTS buckets (
        series_key TEXT NOT NULL,
        resolution_seconds INTEGER NOT NULL,
        bucket_start_ms INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (series_key, resolution_seconds, bucket_start_ms)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS buckets_by_age ON buckets (resolution_seconds, bucket_start_ms);
    `);
  }

  close(): void {
    this.db.close();
  }

  /** Returns a prepared statement, prepared once per SQL text, because flushes run the same few statements often. */
  private statement(sql: string): Statement {
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  /** Adds per-minute distribution counters to the stored minute buckets, in one transaction. */
  addDistributionMinutes(items: Array<{ distributionId: string; minuteStartMs: number; counters: DistributionCounters }>): void {
    const write = this.db.transaction(() => {
      for (const item of items) {
        const seriesKey = distributionSeriesKey(item.distributionId);
        this.upsertSeries({
          seriesKey,
          kind: "distribution",
          namespace: "AWS/CloudFront",
          metricName: "",
          dimensions: [
            { Name: "DistributionId", Value: item.distributionId },
            { Name: "Region", Value: "Global" },
          ],
          unit: "",
          lastTimestampMs: item.minuteStartMs,
        });
        this.mergeBucket(DISTRIBUTION_CODEC, seriesKey, 60, item.minuteStartMs, item.counters);
      }
    });
    write();
  }

  /** Adds custom metric statistics to minute buckets, in one transaction. */
  addCustomMinutes(
    items: Array<{ namespace: string; metricName: string; dimensions: Dimension[]; unit: string; minuteStartMs: number; stats: StatSet }>,
  ): void {
    const write = this.db.transaction(() => {
      for (const item of items) {
        const seriesKey = customSeriesKey(item.namespace, item.metricName, item.dimensions, item.unit);
        this.upsertSeries({
          seriesKey,
          kind: "custom",
          namespace: item.namespace,
          metricName: item.metricName,
          dimensions: canonicalDimensions(item.dimensions),
          unit: item.unit,
          lastTimestampMs: item.minuteStartMs,
        });
        this.mergeBucket(CUSTOM_CODEC, seriesKey, 60, item.minuteStartMs, item.stats);
      }
    });
    write();
  }

  /** Returns the buckets of one series that start in [fromMs, toMs), at every resolution. */
  readBuckets(seriesKey: string, fromMs: number, toMs: number): StoredBucket[] {
    return this
      .statement(
        `SELECT resolution_seconds AS resolutionSeconds, bucket_start_ms AS bucketStartMs, data
         FROM buckets WHERE series_key = ? AND bucket_start_ms >= ? AND bucket_start_ms < ?`,
      )
      .all(seriesKey, fromMs, toMs) as StoredBucket[];
  }

  /** Returns series whose newest data point is at or after `sinceMs`. */
  listSeries(sinceMs: number): SeriesRow[] {
    const rows = this
      .statement(
        `SELECT series_key AS seriesKey, kind, namespace, metric_name AS metricName, dimensions, unit,
                last_timestamp_ms AS lastTimestampMs
         FROM series WHERE last_timestamp_ms >= ? ORDER BY namespace, metric_name, dimensions, unit`,
      )
      .all(sinceMs) as Array<Omit<SeriesRow, "dimensions"> & { dimensions: string }>;
    return rows.map((row) => ({ ...row, dimensions: JSON.parse(row.dimensions) as Dimension[] }));
  }

  /** Returns the custom series of one metric name in one namespace. */
  findCustomSeries(namespace: string, metricName: string): SeriesRow[] {
    const rows = this
      .statement(
        `SELECT series_key AS seriesKey, kind, namespace, metric_name AS metricName, dimensions, unit,
                last_timestamp_ms AS lastTimestampMs
         FROM series WHERE kind = 'custom' AND namespace = ? AND metric_name = ?`,
      )
      .all(namespace, metricName) as Array<Omit<SeriesRow, "dimensions"> & { dimensions: string }>;
    return rows.map((row) => ({ ...row, dimensions: JSON.parse(row.dimensions) as Dimension[] }));
  }

  /**
   * Moves buckets past their tier's age into the next tier, and deletes
   * hourly buckets past the last tier. Work per call is bounded by
   * `maxBatches * ROLLUP_BATCH_ROWS` rows; the rest waits for the next call.
   * Returns the number of rows rolled up or deleted.
   */
  rollUp(nowMs: number, maxBatches = 5): number {
    let processed = 0;
    for (let index = 0; index < RETENTION_TIERS.length; index++) {
      const tier = RETENTION_TIERS[index]!;
      const next = RETENTION_TIERS[index + 1];
      if (next === undefined) {
        const info = this
          .statement(`DELETE FROM buckets WHERE resolution_seconds = ? AND bucket_start_ms < ?`)
          .run(tier.resolutionSeconds, nowMs - tier.keepForMs);
        processed += info.changes;
        continue;
      }
      // Only whole target buckets move, so a target bucket is never split
      // between two tiers.
      const targetMs = next.resolutionSeconds * 1000;
      const cutoffMs = Math.floor((nowMs - tier.keepForMs) / targetMs) * targetMs;
      for (let batch = 0; batch < maxBatches; batch++) {
        const moved = this.rollUpBatch(tier.resolutionSeconds, next.resolutionSeconds, cutoffMs);
        processed += moved;
        if (moved < ROLLUP_BATCH_ROWS) break;
      }
    }
    return processed;
  }

  private rollUpBatch(fromResolution: number, toResolution: number, cutoffMs: number): number {
    const move = this.db.transaction(() => {
      const rows = this
        .statement(
          `SELECT b.series_key AS seriesKey, s.kind AS kind, b.bucket_start_ms AS bucketStartMs, b.data AS data
           FROM buckets b JOIN series s ON s.series_key = b.series_key
           WHERE b.resolution_seconds = ? AND b.bucket_start_ms < ?
           LIMIT ?`,
        )
        .all(fromResolution, cutoffMs, ROLLUP_BATCH_ROWS) as Array<{
        seriesKey: string;
        kind: SeriesKind;
        bucketStartMs: number;
        data: string;
      }>;
      const targetMs = toResolution * 1000;
      const groups = new Map<string, { kind: SeriesKind; seriesKey: string; startMs: number; value: never }>();
      const remove = this.statement(
        `DELETE FROM buckets WHERE series_key = ? AND resolution_seconds = ? AND bucket_start_ms = ?`,
      );
      for (const row of rows) {
        const codec = CODECS[row.kind];
        const startMs = Math.floor(row.bucketStartMs / targetMs) * targetMs;
        const groupKey = `${startMs}\0${row.seriesKey}`;
        const value = codec.parse(row.data);
        const group = groups.get(groupKey);
        if (group) codec.merge(group.value, value);
        else groups.set(groupKey, { kind: row.kind, seriesKey: row.seriesKey, startMs, value });
        remove.run(row.seriesKey, fromResolution, row.bucketStartMs);
      }
      for (const group of groups.values()) {
        this.mergeBucket(CODECS[group.kind], group.seriesKey, toResolution, group.startMs, group.value);
      }
      return rows.length;
    });
    return move();
  }

  private upsertSeries(row: SeriesRow): void {
    this
      .statement(
        `INSERT INTO series (series_key, kind, namespace, metric_name, dimensions, unit, last_timestamp_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (series_key) DO UPDATE SET
           last_timestamp_ms = MAX(last_timestamp_ms, excluded.last_timestamp_ms)`,
      )
      .run(row.seriesKey, row.kind, row.namespace, row.metricName, JSON.stringify(row.dimensions), row.unit, row.lastTimestampMs);
  }

  private mergeBucket<T>(codec: BucketCodec<T>, seriesKey: string, resolutionSeconds: number, startMs: number, value: T): void {
    const existing = this
      .statement(`SELECT data FROM buckets WHERE series_key = ? AND resolution_seconds = ? AND bucket_start_ms = ?`)
      .get(seriesKey, resolutionSeconds, startMs) as { data: string } | undefined;
    let merged = value;
    if (existing) {
      merged = codec.parse(existing.data);
      codec.merge(merged, value);
    }
    this
      .statement(
        `INSERT INTO buckets (series_key, resolution_seconds, bucket_start_ms, data) VALUES (?, ?, ?, ?)
         ON CONFLICT (series_key, resolution_seconds, bucket_start_ms) DO UPDATE SET data = excluded.data`,
      )
      .run(seriesKey, resolutionSeconds, startMs, codec.serialize(merged));
  }
}

export { MINUTE_MS };

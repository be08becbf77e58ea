import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Statement } from "better-sqlite3";
import type { Logger } from "../common/logger.js";
import { openDatabase, type SqliteDatabase } from "../common/sqlite.js";
import { CUSTOM_BUCKETS, DISTRIBUTION_BUCKETS, type BucketCodec, type StoredBucketColumns } from "./bucket-encoding.js";
import type { DistributionCounters } from "./distribution-counters.js";
import type { StatSet } from "./stat-set.js";
import {
  BucketPruner,
  DEFAULT_METRICS_DISK_MIB,
  DEFAULT_PRUNE_PASS_MS,
  type DiskBudgetStats,
  type PruneCounts,
  type PruneResult,
} from "./store-pruning.js";
import { convertJsonBuckets, hasJsonBuckets, prepareSchema } from "./store-schema.js";

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

/**
 * Returns the maximum number of buckets of one series: each tier's age range
 * at its resolution, plus one bucket per tier that a roll-up has not moved yet.
 */
export function maxBucketsPerSeries(): number {
  let total = 0;
  let fromMs = 0;
  for (const tier of RETENTION_TIERS) {
    total += Math.ceil((tier.keepForMs - fromMs) / (tier.resolutionSeconds * 1000)) + 1;
    fromMs = tier.keepForMs;
  }
  return total;
}

/**
 * Rows read per roll-up transaction. At the largest bucket (about 5 KB, as
 * bench/metrics/disk-bound.ts measures) one transaction writes about 25 MB to
 * the WAL, below WAL_SIZE_LIMIT_BYTES.
 */
const ROLLUP_BATCH_ROWS = 5_000;
/** Roll-up transactions per `rollUp` call, which bounds the time one call blocks the event loop. */
const ROLLUP_MAX_BATCHES = 10;

/** Default cap on custom series (one per namespace, metric name, dimensions and unit). */
export const DEFAULT_MAX_CUSTOM_SERIES = 1_000;
/**
 * Cap on distribution series. CloudFront's default quota is 500 distributions
 * per account. The rest of the cap leaves room for deleted distributions,
 * whose series stay until their last data ages out after 455 days.
 */
export const MAX_DISTRIBUTION_SERIES = 1_000;
/** Free pages (4 KiB each) kept for reuse. Incremental vacuum returns the rest to the file system. */
const RESERVED_FREE_PAGES = 256;
/** Free pages returned to the file system per roll-up, which bounds the time one incremental vacuum takes. */
const MAX_VACUUM_PAGES = 2_048;
/** The WAL file is truncated back to this size after a checkpoint. */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** Minimum time between two log lines about failed pruning after writes. */
const PRUNE_ERROR_LOG_INTERVAL_MS = 60_000;

/** Error raised, with nothing written, when a write would create more custom series than the cap allows. */
export class SeriesLimitError extends Error {
  constructor(
    readonly limit: number,
    readonly existing: number,
    readonly requested: number,
  ) {
    super(`the request would create ${requested} new series, and ${existing} of the ${limit} allowed exist`);
    this.name = "SeriesLimitError";
  }
}

export interface MetricsStoreOptions {
  log: Logger;
  /** Cap on custom series, DEFAULT_MAX_CUSTOM_SERIES when unset. */
  maxCustomSeries?: number;
  /** Byte budget of the database's pages in use, DEFAULT_METRICS_DISK_MIB MiB when unset. */
  diskBudgetBytes?: number;
  /** Time limit of one pruning or conversion pass, in milliseconds; DEFAULT_PRUNE_PASS_MS when unset. */
  maxPassMs?: number;
  /** Clock that decides which minutes are the last 15 days when a write prunes; defaults to `Date.now`. */
  now?: () => number;
}

export interface RollUpResult {
  /** Rows rolled up or deleted by retention. */
  rows: number;
  /** Buckets converted from JSON text to the binary encoding. */
  convertedRows: number;
  /** Buckets thinned or deleted to keep the disk budget. */
  pruned: PruneCounts;
  /** False when a work limit stopped the call before every old bucket moved, every bucket was converted, or the database was back within budget. */
  complete: boolean;
}

export type SeriesKind = "distribution" | "custom";

export interface Dimension {
  Name: string;
  Value: string;
}

/** One stored series: a distribution (all its CloudFront metrics) or one custom metric and unit. */
export interface SeriesRow {
  seriesId: number;
  seriesKey: string;
  kind: SeriesKind;
  namespace: string;
  metricName: string;
  dimensions: Dimension[];
  unit: string;
  lastTimestampMs: number;
}

/** One stored bucket; decode it with decodeCustomBucket or decodeDistributionBucket. */
export interface StoredBucket extends StoredBucketColumns {
  resolutionSeconds: number;
  bucketStartMs: number;
}

const CODECS: Record<SeriesKind, BucketCodec<never>> = {
  distribution: DISTRIBUTION_BUCKETS as BucketCodec<never>,
  custom: CUSTOM_BUCKETS as BucketCodec<never>,
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

/**
 * SQLite storage of metric buckets at `<dataDir>/metrics/metrics.db`. After
 * every write, and in every roll-up, the store checks the pages in use
 * against its disk budget and prunes when they exceed it (see store-pruning.ts).
 */
export class MetricsStore {
  readonly db: SqliteDatabase;
  readonly maxCustomSeries: number;
  private readonly statements = new Map<string, Statement>();
  private readonly seriesCounts: Record<SeriesKind, number> = { distribution: 0, custom: 0 };
  private readonly pruner: BucketPruner;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxPassMs: number;
  /** True while buckets written as JSON text may remain; pruning waits until they are converted. */
  private converting: boolean;
  private pruneFailures = 0;
  private lastPruneErrorLogMs = -Infinity;

  constructor(dataDir: string, options: MetricsStoreOptions) {
    const folder = join(dataDir, "metrics");
    mkdirSync(folder, { recursive: true });
    this.maxCustomSeries = options.maxCustomSeries ?? DEFAULT_MAX_CUSTOM_SERIES;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.maxPassMs = options.maxPassMs ?? DEFAULT_PRUNE_PASS_MS;
    const path = join(folder, "metrics.db");
    // NORMAL: a process crash loses nothing; power loss may lose the last
    // few seconds of counts, which metrics can afford.
    this.db = openDatabase(path, { synchronous: "NORMAL", autoVacuum: "INCREMENTAL" });
    this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    prepareSchema(this.db, options.log);
    this.converting = hasJsonBuckets(this.db);
    this.pruner = new BucketPruner(this.db, {
      budgetBytes: options.diskBudgetBytes ?? DEFAULT_METRICS_DISK_MIB * 1024 * 1024,
      maxPassMs: this.maxPassMs,
      walPath: `${path}-wal`,
      log: options.log,
    });
    this.recountSeries();
    if (this.seriesCounts.custom > this.maxCustomSeries) {
      this.log.warn(
        { customSeries: this.seriesCounts.custom, maxCustomSeries: this.maxCustomSeries },
        "more custom metric series exist than --metrics-max-series allows, so PutMetricData that creates a new series is " +
          "rejected until series without data for 455 days are removed",
      );
    }
  }

  /** Reads the series counts from the table, also after a failed transaction left the counters ahead of it. */
  private recountSeries(): void {
    const counts = this.db.prepare(`SELECT kind, COUNT(*) AS count FROM series GROUP BY kind`).all() as Array<{
      kind: SeriesKind;
      count: number;
    }>;
    this.seriesCounts.distribution = 0;
    this.seriesCounts.custom = 0;
    for (const row of counts) this.seriesCounts[row.kind] = row.count;
  }

  /** Runs `body` in a transaction and recounts the series when it fails, since a rollback undoes inserts the counters saw. */
  private inTransaction<T>(body: () => T): T {
    try {
      return this.db.transaction(body)();
    } catch (error) {
      this.recountSeries();
      throw error;
    }
  }

  /** Returns the number of stored series of each kind. */
  seriesCount(kind: SeriesKind): number {
    return this.seriesCounts[kind];
  }

  /** Returns the database's size against its budget and what pruning has done since the store opened. */
  diskStats(): DiskBudgetStats {
    return this.pruner.stats();
  }

  /**
   * Prunes buckets until the database is within its disk budget, for at
   * most one pass (about `maxPassMs`). Does nothing while JSON buckets from
   * an older Portico wait for conversion, because conversion alone may
   * bring the size back within the budget.
   */
  enforceDiskBudget(nowMs: number = this.now()): PruneResult {
    if (this.converting) return { pruned: { thin_older: 0, delete_older: 0, thin_recent: 0, delete_recent: 0 }, complete: false };
    return this.pruner.prune(nowMs);
  }

  /**
   * Prunes after a committed write. A pruning failure never fails the write:
   * it is counted and logged at most once per PRUNE_ERROR_LOG_INTERVAL_MS,
   * and the roll-up tries again.
   */
  private pruneAfterWrite(): void {
    try {
      this.enforceDiskBudget();
    } catch (error) {
      this.pruneFailures += 1;
      const nowMs = Date.now();
      if (nowMs - this.lastPruneErrorLogMs >= PRUNE_ERROR_LOG_INTERVAL_MS) {
        this.log.error({ err: error, failures: this.pruneFailures }, "metrics disk budget pruning after a write failed");
        this.lastPruneErrorLogMs = nowMs;
        this.pruneFailures = 0;
      }
    }
  }

  close(): void {
    this.pruner.flushLog();
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

  /**
   * Adds per-minute distribution counters to the stored minute buckets, in
   * one transaction. Minutes of a distribution that has no series yet are
   * skipped once MAX_DISTRIBUTION_SERIES exist; returns how many were skipped.
   */
  addDistributionMinutes(items: Array<{ distributionId: string; minuteStartMs: number; counters: DistributionCounters }>): number {
    const skipped = this.inTransaction(() => {
      let skipped = 0;
      for (const item of items) {
        const seriesId = this.upsertSeries(
          {
            seriesKey: distributionSeriesKey(item.distributionId),
            kind: "distribution",
            namespace: "AWS/CloudFront",
            metricName: "",
            dimensions: [
              { Name: "DistributionId", Value: item.distributionId },
              { Name: "Region", Value: "Global" },
            ],
            unit: "",
            lastTimestampMs: item.minuteStartMs,
          },
          MAX_DISTRIBUTION_SERIES,
        );
        if (seriesId === undefined) {
          skipped += 1;
          continue;
        }
        this.mergeBucket(DISTRIBUTION_BUCKETS, seriesId, 60, item.minuteStartMs, item.counters);
      }
      return skipped;
    });
    this.pruneAfterWrite();
    return skipped;
  }

  /**
   * Adds custom metric statistics to minute buckets, in one transaction.
   * Throws SeriesLimitError, writing nothing, when the items would create a
   * series and take the number of custom series past `maxCustomSeries`.
   */
  addCustomMinutes(
    items: Array<{ namespace: string; metricName: string; dimensions: Dimension[]; unit: string; minuteStartMs: number; stats: StatSet }>,
  ): void {
    this.inTransaction(() => {
      const keyed = items.map((item) => ({
        item,
        seriesKey: customSeriesKey(item.namespace, item.metricName, item.dimensions, item.unit),
      }));
      const newKeys = new Set(keyed.map(({ seriesKey }) => seriesKey).filter((key) => this.seriesId(key) === undefined));
      const existing = this.seriesCounts.custom;
      // Only a new series counts against the cap, so writes to existing
      // series go on after the cap is lowered below the number stored.
      if (newKeys.size > 0 && existing + newKeys.size > this.maxCustomSeries) {
        throw new SeriesLimitError(this.maxCustomSeries, existing, newKeys.size);
      }
      for (const { item, seriesKey } of keyed) {
        const seriesId = this.upsertSeries(
          {
            seriesKey,
            kind: "custom",
            namespace: item.namespace,
            metricName: item.metricName,
            dimensions: canonicalDimensions(item.dimensions),
            unit: item.unit,
            lastTimestampMs: item.minuteStartMs,
          },
          this.maxCustomSeries,
        )!;
        this.mergeBucket(CUSTOM_BUCKETS, seriesId, 60, item.minuteStartMs, item.stats);
      }
    });
    this.pruneAfterWrite();
  }

  /** Returns the buckets of one series that start in [fromMs, toMs), at every resolution. */
  readBuckets(seriesKey: string, fromMs: number, toMs: number): StoredBucket[] {
    const seriesId = this.seriesId(seriesKey);
    if (seriesId === undefined) return [];
    return this
      .statement(
        `SELECT resolution_seconds AS resolutionSeconds, bucket_start_ms AS bucketStartMs, data, histograms
         FROM buckets WHERE series_id = ? AND bucket_start_ms >= ? AND bucket_start_ms < ?`,
      )
      .all(seriesId, fromMs, toMs) as StoredBucket[];
  }

  /** Returns series whose newest data point is at or after `sinceMs`. */
  listSeries(sinceMs: number): SeriesRow[] {
    const rows = this
      .statement(
        `SELECT series_id AS seriesId, series_key AS seriesKey, kind, namespace, metric_name AS metricName, dimensions, unit,
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
        `SELECT series_id AS seriesId, series_key AS seriesKey, kind, namespace, metric_name AS metricName, dimensions, unit,
                last_timestamp_ms AS lastTimestampMs
         FROM series WHERE kind = 'custom' AND namespace = ? AND metric_name = ?`,
      )
      .all(namespace, metricName) as Array<Omit<SeriesRow, "dimensions"> & { dimensions: string }>;
    return rows.map((row) => ({ ...row, dimensions: JSON.parse(row.dimensions) as Dimension[] }));
  }

  /**
   * Converts JSON buckets of an older Portico for about `maxPassMs`. Then
   * moves buckets past their tier's age into the next tier, deletes hourly
   * buckets past the last tier and series with no data left, and prunes to
   * the disk budget. Last, it returns up to MAX_VACUUM_PAGES free pages beyond
   * RESERVED_FREE_PAGES to the file system. Roll-up work per call is bounded
   * by `maxBatches * ROLLUP_BATCH_ROWS` rows per tier. The rest waits for the
   * next call, and `complete` is false when any was left.
   */
  rollUp(nowMs: number, maxBatches = ROLLUP_MAX_BATCHES): RollUpResult {
    let rows = 0;
    let complete = true;
    let convertedRows = 0;
    if (this.converting) {
      const conversion = convertJsonBuckets(this.db, performance.now() + this.maxPassMs);
      convertedRows = conversion.rows;
      this.converting = !conversion.complete;
      if (conversion.failed > 0) {
        this.log.warn({ failed: conversion.failed }, "metrics buckets of an older Portico that do not parse were left as they are");
      }
      if (conversion.complete) this.log.info("metrics buckets of an older Portico converted to the binary encoding");
      complete = conversion.complete;
    }
    for (let index = 0; index < RETENTION_TIERS.length; index++) {
      const tier = RETENTION_TIERS[index]!;
      const next = RETENTION_TIERS[index + 1];
      if (next === undefined) {
        const info = this
          .statement(`DELETE FROM buckets WHERE resolution_seconds = ? AND bucket_start_ms < ?`)
          .run(tier.resolutionSeconds, nowMs - tier.keepForMs);
        rows += info.changes;
        continue;
      }
      // Only whole target buckets move, so a target bucket is never split
      // between two tiers.
      const targetMs = next.resolutionSeconds * 1000;
      const cutoffMs = Math.floor((nowMs - tier.keepForMs) / targetMs) * targetMs;
      let batch = 0;
      for (; batch < maxBatches; batch++) {
        const moved = this.rollUpBatch(tier.resolutionSeconds, next.resolutionSeconds, cutoffMs);
        rows += moved;
        if (moved < ROLLUP_BATCH_ROWS) break;
      }
      if (batch === maxBatches) complete = false;
    }
    rows += this.deleteExpiredSeries(nowMs);
    const budget = this.enforceDiskBudget(nowMs);
    if (!budget.complete) complete = false;
    if (!this.releaseFreePages()) complete = false;
    return { rows, convertedRows, pruned: budget.pruned, complete };
  }

  /** Deletes series whose newest data is older than the last tier keeps, so they no longer count against the caps. */
  private deleteExpiredSeries(nowMs: number): number {
    const lastTier = RETENTION_TIERS[RETENTION_TIERS.length - 1]!;
    return this.inTransaction(() => {
      const expired = this
        .statement(`SELECT series_id AS seriesId, kind FROM series WHERE last_timestamp_ms < ?`)
        .all(nowMs - lastTier.keepForMs) as Array<{ seriesId: number; kind: SeriesKind }>;
      for (const row of expired) {
        this.statement(`DELETE FROM buckets WHERE series_id = ?`).run(row.seriesId);
        this.statement(`DELETE FROM series WHERE series_id = ?`).run(row.seriesId);
        this.seriesCounts[row.kind] -= 1;
      }
      return expired.length;
    });
  }

  /** Returns free pages to the file system and returns false when more than RESERVED_FREE_PAGES are still left. */
  private releaseFreePages(): boolean {
    const free = this.db.pragma("freelist_count", { simple: true }) as number;
    const excess = free - RESERVED_FREE_PAGES;
    if (excess > 0) this.db.pragma(`incremental_vacuum(${Math.min(excess, MAX_VACUUM_PAGES)})`);
    return excess <= MAX_VACUUM_PAGES;
  }

  private rollUpBatch(fromResolution: number, toResolution: number, cutoffMs: number): number {
    const move = this.db.transaction(() => {
      const rows = this
        .statement(
          `SELECT b.series_id AS seriesId, s.kind AS kind, b.bucket_start_ms AS bucketStartMs, b.data AS data,
                  b.histograms AS histograms
           FROM buckets b JOIN series s ON s.series_id = b.series_id
           WHERE b.resolution_seconds = ? AND b.bucket_start_ms < ?
           LIMIT ?`,
        )
        .all(fromResolution, cutoffMs, ROLLUP_BATCH_ROWS) as Array<
        StoredBucketColumns & { seriesId: number; kind: SeriesKind; bucketStartMs: number }
      >;
      const targetMs = toResolution * 1000;
      const groups = new Map<string, { kind: SeriesKind; seriesId: number; startMs: number; value: never }>();
      const remove = this.statement(
        `DELETE FROM buckets WHERE series_id = ? AND resolution_seconds = ? AND bucket_start_ms = ?`,
      );
      for (const row of rows) {
        const codec = CODECS[row.kind];
        const startMs = Math.floor(row.bucketStartMs / targetMs) * targetMs;
        const groupKey = `${startMs}:${row.seriesId}`;
        const value = codec.decode(row);
        const group = groups.get(groupKey);
        if (group) codec.merge(group.value, value);
        else groups.set(groupKey, { kind: row.kind, seriesId: row.seriesId, startMs, value });
        remove.run(row.seriesId, fromResolution, row.bucketStartMs);
      }
      for (const group of groups.values()) {
        this.mergeBucket(CODECS[group.kind], group.seriesId, toResolution, group.startMs, group.value);
      }
      return rows.length;
    });
    return move();
  }

  private seriesId(seriesKey: string): number | undefined {
    const row = this.statement(`SELECT series_id AS seriesId FROM series WHERE series_key = ?`).get(seriesKey) as
      | { seriesId: number }
      | undefined;
    return row?.seriesId;
  }

  /**
   * Returns the id of the row's series after moving its newest time stamp
   * forward. A new series is created unless `limit` series of its kind exist,
   * and then the result is undefined.
   */
  private upsertSeries(row: Omit<SeriesRow, "seriesId">, limit: number): number | undefined {
    const existing = this.seriesId(row.seriesKey);
    if (existing !== undefined) {
      this
        .statement(`UPDATE series SET last_timestamp_ms = MAX(last_timestamp_ms, ?) WHERE series_id = ?`)
        .run(row.lastTimestampMs, existing);
      return existing;
    }
    if (this.seriesCounts[row.kind] >= limit) return undefined;
    const info = this
      .statement(
        `INSERT INTO series (series_key, kind, namespace, metric_name, dimensions, unit, last_timestamp_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(row.seriesKey, row.kind, row.namespace, row.metricName, JSON.stringify(row.dimensions), row.unit, row.lastTimestampMs);
    this.seriesCounts[row.kind] += 1;
    return Number(info.lastInsertRowid);
  }

  private mergeBucket<T>(codec: BucketCodec<T>, seriesId: number, resolutionSeconds: number, startMs: number, value: T): void {
    const existing = this
      .statement(`SELECT data, histograms FROM buckets WHERE series_id = ? AND resolution_seconds = ? AND bucket_start_ms = ?`)
      .get(seriesId, resolutionSeconds, startMs) as StoredBucketColumns | undefined;
    let merged = value;
    if (existing) {
      merged = codec.decode(existing);
      codec.merge(merged, value);
    }
    const encoded = codec.encode(merged);
    this
      .statement(
        `INSERT INTO buckets (series_id, resolution_seconds, bucket_start_ms, data, histograms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (series_id, resolution_seconds, bucket_start_ms)
         DO UPDATE SET data = excluded.data, histograms = excluded.histograms`,
      )
      .run(seriesId, resolutionSeconds, startMs, encoded.data, encoded.histograms);
  }
}

export { MINUTE_MS };

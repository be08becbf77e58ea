import { statSync } from "node:fs";
import type { Statement } from "better-sqlite3";
import type { Logger } from "../common/logger.js";
import type { SqliteDatabase } from "../common/sqlite.js";

/**
 * Default byte budget of metrics.db, sized for a small installation. 1 GiB
 * holds 15 days of minutes with full histograms for about 9 series at the
 * largest bucket size (5,235 bytes, bench/metrics/disk-bound.ts). It also
 * holds the whole 455 days of about 180 series that receive one value a
 * minute (5.9 MB each in test/metrics/disk-bound.test.ts).
 */
export const DEFAULT_METRICS_DISK_MIB = 1024;

/**
 * Age below which minute buckets are pruned only when nothing else is left:
 * 15 days, the minute tier's retention in RETENTION_TIERS (a test checks they agree).
 */
export const PROTECTED_MINUTES_MS = 15 * 24 * 3600 * 1000;

/** Time one pruning pass may take before it stops and leaves the rest to the next one. */
export const DEFAULT_PRUNE_PASS_MS = 50;

/** Rows thinned or deleted per statement, between two checks of the size and the clock. */
const PRUNE_BATCH_ROWS = 500;

/** Pruning stops this fraction of the budget below it, so that a store at its budget does not prune on every write. */
const PRUNE_HEADROOM_FRACTION = 1 / 64;

/** Minimum time between two pruning log lines; the counts in between are summed. */
const LOG_INTERVAL_MS = 60_000;

/**
 * The pruning steps in the order they run. Each runs only while the
 * database is over budget and the step before it has nothing left:
 * - `thin_older`: drop the histograms of buckets older than 15 days, oldest first;
 * - `delete_older`: delete hourly buckets, then 5-minute buckets, then
 *   minute buckets older than 15 days, oldest first;
 * - `thin_recent`: drop the histograms of the last 15 days' minute buckets, oldest first;
 * - `delete_recent`: delete the last 15 days' minute buckets, oldest first.
 */
export const PRUNE_STEPS = ["thin_older", "delete_older", "thin_recent", "delete_recent"] as const;
export type PruneStep = (typeof PRUNE_STEPS)[number];

export type PruneCounts = Record<PruneStep, number>;

export interface PruneResult {
  /** Buckets thinned or deleted by each step. */
  pruned: PruneCounts;
  /** False when the pass ran out of time while the database was still over budget. */
  complete: boolean;
}

/** Sizes and pruning totals of the metrics database since the store opened. */
export interface DiskBudgetStats {
  budgetBytes: number;
  /** Bytes of the pages in use at the last check: page_count × page_size minus the free list. */
  usedBytes: number;
  /** Bytes of the WAL file now. */
  walBytes: number;
  pruned: PruneCounts;
  passes: number;
  /** Duration of the longest pass, in milliseconds. */
  maxPassMs: number;
}

export interface BucketPrunerOptions {
  budgetBytes: number;
  maxPassMs: number;
  walPath: string;
  log: Logger;
}

interface PruneAction {
  step: PruneStep;
  /** Thins or deletes up to `limit` buckets and returns how many it did. */
  run(protectFromMs: number, limit: number): number;
}

function emptyCounts(): PruneCounts {
  return { thin_older: 0, delete_older: 0, thin_recent: 0, delete_recent: 0 };
}

/** Keeps metrics.db within a byte budget by thinning and deleting buckets in the order of PRUNE_STEPS. */
export class BucketPruner {
  readonly budgetBytes: number;
  private readonly targetBytes: number;
  private readonly maxPassMs: number;
  private readonly walPath: string;
  private readonly log: Logger;
  private readonly pageCount: Statement;
  private readonly freelistCount: Statement;
  private readonly pageSize: number;
  private readonly actions: PruneAction[];
  private readonly totals = emptyCounts();
  private unlogged = emptyCounts();
  private lastLogMs = -Infinity;
  private exhaustedUnlogged = false;
  private lastUsedBytes = 0;
  private passes = 0;
  private maxPassDurationMs = 0;

  constructor(db: SqliteDatabase, options: BucketPrunerOptions) {
    this.budgetBytes = options.budgetBytes;
    this.targetBytes = options.budgetBytes - Math.floor(options.budgetBytes * PRUNE_HEADROOM_FRACTION);
    this.maxPassMs = options.maxPassMs;
    this.walPath = options.walPath;
    this.log = options.log;
    this.pageCount = db.prepare("PRAGMA page_count").pluck();
    this.freelistCount = db.prepare("PRAGMA freelist_count").pluck();
    this.pageSize = db.pragma("page_size", { simple: true }) as number;
    this.actions = pruneActions(db);
  }

  /** Returns the bytes of the pages in use, counting pages still only in the WAL. */
  usedBytes(): number {
    const pages = (this.pageCount.get() as number) - (this.freelistCount.get() as number);
    this.lastUsedBytes = pages * this.pageSize;
    return this.lastUsedBytes;
  }

  /**
   * Thins and deletes buckets until the pages in use are a little below the
   * budget, for at most about `maxPassMs` (the batch under way finishes).
   * Each statement commits on its own, so a crash loses only what was
   * already chosen to be pruned. `nowMs` decides which minutes are the last 15 days.
   */
  prune(nowMs: number): PruneResult {
    const pruned = emptyCounts();
    let used = this.usedBytes();
    if (used <= this.budgetBytes) return { pruned, complete: true };

    const started = performance.now();
    const protectFromMs = nowMs - PROTECTED_MINUTES_MS;
    let timedOut = false;
    let rowsThisPass = 0;
    for (const action of this.actions) {
      while (used > this.targetBytes && !timedOut) {
        const rows = action.run(protectFromMs, PRUNE_BATCH_ROWS);
        pruned[action.step] += rows;
        rowsThisPass += rows;
        used = this.usedBytes();
        // A step with nothing left costs one index lookup, so only batches that pruned count against the time.
        timedOut = rowsThisPass > 0 && performance.now() - started >= this.maxPassMs;
        if (rows < PRUNE_BATCH_ROWS) break;
      }
      if (timedOut || used <= this.targetBytes) break;
    }

    const durationMs = performance.now() - started;
    this.passes += 1;
    this.maxPassDurationMs = Math.max(this.maxPassDurationMs, durationMs);
    for (const step of PRUNE_STEPS) {
      this.totals[step] += pruned[step];
      this.unlogged[step] += pruned[step];
    }
    // Over budget with every step done: only series, alarms and pages that pruning cannot free are left.
    if (!timedOut && used > this.budgetBytes) this.exhaustedUnlogged = true;
    this.logIfDue(nowMs, durationMs);
    return { pruned, complete: !timedOut };
  }

  stats(): DiskBudgetStats {
    return {
      budgetBytes: this.budgetBytes,
      usedBytes: this.lastUsedBytes,
      walBytes: statSync(this.walPath, { throwIfNoEntry: false })?.size ?? 0,
      pruned: { ...this.totals },
      passes: this.passes,
      maxPassMs: this.maxPassDurationMs,
    };
  }

  /** Logs the counts not logged yet, as on close. */
  flushLog(): void {
    this.logIfDue(Infinity, 0);
  }

  /**
   * Logs what was pruned since the last line, at most once per
   * LOG_INTERVAL_MS and once more on close. The line is a warning for older
   * buckets, an error when minute buckets of the last 15 days had to go or
   * nothing was left to prune.
   */
  private logIfDue(nowMs: number, lastPassMs: number): void {
    const counts = this.unlogged;
    const total = PRUNE_STEPS.reduce((sum, step) => sum + counts[step], 0);
    if ((total === 0 && !this.exhaustedUnlogged) || nowMs - this.lastLogMs < LOG_INTERVAL_MS) return;
    const fields = {
      budgetBytes: this.budgetBytes,
      usedBytes: this.lastUsedBytes,
      thinnedOlderBuckets: counts.thin_older,
      deletedOlderBuckets: counts.delete_older,
      thinnedRecentBuckets: counts.thin_recent,
      deletedRecentBuckets: counts.delete_recent,
      lastPassMs: Math.round(lastPassMs * 10) / 10,
      maxPassMs: Math.round(this.maxPassDurationMs * 10) / 10,
    };
    if (this.exhaustedUnlogged) {
      this.log.error(fields, "metrics database is over its disk budget with no buckets left to prune; raise --metrics-disk-mb");
    } else if (counts.thin_recent > 0 || counts.delete_recent > 0) {
      this.log.error(
        fields,
        "metrics disk budget cannot hold 15 days of minute data: pruned recent minute buckets; raise --metrics-disk-mb or lower --metrics-max-series",
      );
    } else {
      this.log.warn(fields, "metrics database over its disk budget: pruned buckets older than 15 days");
    }
    this.unlogged = emptyCounts();
    this.exhaustedUnlogged = false;
    this.lastLogMs = nowMs;
  }
}

/** Builds the statements of every step, in PRUNE_STEPS order. */
function pruneActions(db: SqliteDatabase): PruneAction[] {
  const key = "(series_id, resolution_seconds, bucket_start_ms)";
  // The row-value IN keeps each batch one statement, which commits on its own.
  // INDEXED BY: buckets_by_age would also match the recent minutes, but it
  // reaches the ones with histograms only after every thinned one before them.
  const thin = (where: string) =>
    db.prepare(
      `UPDATE buckets SET histograms = NULL WHERE ${key} IN (
         SELECT ${key.slice(1, -1)} FROM buckets INDEXED BY buckets_with_histograms
         WHERE histograms IS NOT NULL AND ${where} ORDER BY bucket_start_ms LIMIT ?)`,
    );
  const remove = (where: string) =>
    db.prepare(
      `DELETE FROM buckets WHERE ${key} IN (
         SELECT ${key.slice(1, -1)} FROM buckets WHERE ${where} ORDER BY bucket_start_ms LIMIT ?)`,
    );
  const thinOlder = thin("bucket_start_ms < ?");
  const deleteTier = remove("resolution_seconds = ?");
  const deleteOlderMinutes = remove("resolution_seconds = 60 AND bucket_start_ms < ?");
  const thinRecent = thin("bucket_start_ms >= ? AND resolution_seconds = 60");
  const deleteRecent = remove("resolution_seconds = 60 AND bucket_start_ms >= ?");
  return [
    { step: "thin_older", run: (fromMs, limit) => thinOlder.run(fromMs, limit).changes },
    { step: "delete_older", run: (_fromMs, limit) => deleteTier.run(3600, limit).changes },
    { step: "delete_older", run: (_fromMs, limit) => deleteTier.run(300, limit).changes },
    { step: "delete_older", run: (fromMs, limit) => deleteOlderMinutes.run(fromMs, limit).changes },
    { step: "thin_recent", run: (fromMs, limit) => thinRecent.run(fromMs, limit).changes },
    { step: "delete_recent", run: (fromMs, limit) => deleteRecent.run(fromMs, limit).changes },
  ];
}

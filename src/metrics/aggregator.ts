import type { Logger } from "../common/logger.js";
import { addRequest, emptyCounters, mergeCounters, type DistributionCounters } from "./distribution-counters.js";
import { MAX_DISTRIBUTION_SERIES, MINUTE_MS, type MetricsStore } from "./store.js";
import type { MetricsSink, RequestRecord } from "./types.js";

/**
 * Distribution-minutes held in memory between flushes. Past this many,
 * records are dropped and counted, which bounds memory if flushes fail.
 */
export const MAX_PENDING_MINUTES = 100_000;
export const FLUSH_INTERVAL_MS = 5_000;
/** How often buckets past their retention tier are rolled up. */
export const ROLLUP_INTERVAL_MS = 10 * 60_000;

export interface MinuteAggregatorOptions {
  store: MetricsStore;
  log: Logger;
  now?: () => number;
}

/**
 * Aggregates viewer requests per distribution per minute in memory and adds
 * them to the store every few seconds. Memory contains only what has not been
 * flushed yet, so a flush adds deltas and a restart mid-minute loses nothing
 * already flushed. Readers merge the pending deltas with stored rows.
 */
export class MinuteAggregator implements MetricsSink {
  private pending = new Map<string, Map<number, DistributionCounters>>();
  private pendingMinutes = 0;
  private droppedRecords = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastRollUpMs = 0;
  private rollUpUnfinished = false;
  private readonly store: MetricsStore;
  private readonly log: Logger;
  readonly now: () => number;

  constructor(options: MinuteAggregatorOptions) {
    this.store = options.store;
    this.log = options.log;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Adds one request to its distribution's minute. Bad records are counted and dropped, never thrown. */
  record(entry: RequestRecord): void {
    try {
      if (typeof entry.distributionId !== "string" || entry.distributionId === "") return;
      const timestampMs = Number.isFinite(entry.timestampMs) ? entry.timestampMs : this.now();
      const minuteStartMs = Math.floor(timestampMs / MINUTE_MS) * MINUTE_MS;
      let minutes = this.pending.get(entry.distributionId);
      if (minutes === undefined) {
        minutes = new Map();
        this.pending.set(entry.distributionId, minutes);
      }
      let counters = minutes.get(minuteStartMs);
      if (counters === undefined) {
        if (this.pendingMinutes >= MAX_PENDING_MINUTES) {
          this.droppedRecords += 1;
          return;
        }
        counters = emptyCounters();
        minutes.set(minuteStartMs, counters);
        this.pendingMinutes += 1;
      }
      addRequest(counters, entry);
    } catch {
      this.droppedRecords += 1;
    }
  }

  /**
   * Adds one distribution-minute of counts recorded elsewhere, such as an
   * edge worker's rollup. Past MAX_PENDING_MINUTES a new minute is dropped
   * and its requests counted.
   */
  addMinute(distributionId: string, minuteStartMs: number, counters: DistributionCounters): void {
    const known = this.pending.get(distributionId)?.has(minuteStartMs) === true;
    if (!known && this.pendingMinutes >= MAX_PENDING_MINUTES) {
      this.droppedRecords += counters.requests;
      return;
    }
    this.restore(distributionId, minuteStartMs, counters);
  }

  /** Counts records lost before they reached the aggregator, for the next flush's warning. */
  countDropped(records: number): void {
    this.droppedRecords += records;
  }

  /** Returns the unflushed minutes of one distribution. */
  pendingFor(distributionId: string): ReadonlyMap<number, DistributionCounters> | undefined {
    return this.pending.get(distributionId);
  }

  pendingDistributions(): string[] {
    return [...this.pending.keys()];
  }

  /**
   * Writes every pending minute to the store and, every ROLLUP_INTERVAL_MS,
   * rolls up old buckets. On a write failure the minutes go back into
   * memory for the next flush.
   */
  flush(): void {
    this.writePending();
    const nowMs = this.now();
    // A roll-up that hit its work limit continues at the next flush.
    if (this.rollUpUnfinished || nowMs - this.lastRollUpMs >= ROLLUP_INTERVAL_MS) {
      this.lastRollUpMs = nowMs;
      try {
        const result = this.store.rollUp(nowMs);
        this.rollUpUnfinished = !result.complete;
        if (result.rows > 0) this.log.info({ rows: result.rows, complete: result.complete }, "metrics buckets rolled up");
      } catch (error) {
        this.log.error({ err: error }, "metrics roll-up failed");
      }
    }
  }

  /**
   * Writes every pending minute to the store in one synchronous transaction,
   * without a roll-up, and returns how many distribution-minutes it wrote. On
   * a write failure the minutes go back into memory.
   */
  writePending(): number {
    if (this.droppedRecords > 0) {
      this.log.warn({ droppedRecords: this.droppedRecords }, "metrics records dropped");
      this.droppedRecords = 0;
    }
    const batch = this.pending;
    this.pending = new Map();
    this.pendingMinutes = 0;
    const items: Array<{ distributionId: string; minuteStartMs: number; counters: DistributionCounters }> = [];
    for (const [distributionId, minutes] of batch) {
      for (const [minuteStartMs, counters] of minutes) items.push({ distributionId, minuteStartMs, counters });
    }
    if (items.length > 0) {
      try {
        const skipped = this.store.addDistributionMinutes(items);
        if (skipped > 0) {
          this.log.warn(
            { skippedMinutes: skipped, limit: MAX_DISTRIBUTION_SERIES },
            "metrics of new distributions dropped: the distribution series limit is reached",
          );
        }
      } catch (error) {
        this.log.error({ err: error, minutes: items.length }, "metrics flush failed; keeping minutes in memory");
        for (const item of items) this.restore(item.distributionId, item.minuteStartMs, item.counters);
        return 0;
      }
    }
    return items.length;
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private restore(distributionId: string, minuteStartMs: number, counters: DistributionCounters): void {
    let minutes = this.pending.get(distributionId);
    if (minutes === undefined) {
      minutes = new Map();
      this.pending.set(distributionId, minutes);
    }
    const current = minutes.get(minuteStartMs);
    if (current) {
      mergeCounters(current, counters);
    } else {
      minutes.set(minuteStartMs, counters);
      this.pendingMinutes += 1;
    }
  }
}

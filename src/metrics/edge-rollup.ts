import { MINUTE_MS } from "./store.js";
import {
  addRequest,
  countersFromJson,
  countersToJson,
  emptyCounters,
  type DistributionCounters,
  type DistributionCountersJson,
} from "./distribution-counters.js";
import { PrometheusCollector, type PrometheusDeltas } from "./prometheus.js";
import type { Http2FloodKind, MetricsSink, RequestRecord } from "./types.js";

/**
 * The counts an edge worker recorded since its last rollup: per-minute CloudWatch
 * counts and Prometheus counts by distribution, and the records of requests
 * that an access log needs one by one. Plain data, so it crosses the IPC pipe
 * with structured clone.
 */
export interface EdgeRollup {
  minutes: Array<{ distributionId: string; minuteStartMs: number; counters: DistributionCountersJson }>;
  prometheus: PrometheusDeltas;
  /** Records for access logs, of distributions that log and only those. */
  records: RequestRecord[];
  /** Records the worker could not keep: past MAX_ROLLUP_MINUTES for counts, or MAX_ROLLUP_RECORDS for logs. */
  droppedRecords: number;
}

/** Distribution-minutes a worker keeps between rollups, at most. Records of further minutes are dropped and counted. */
const MAX_ROLLUP_MINUTES = 10_000;
/** Access log records a worker keeps between rollups, at most. */
const MAX_ROLLUP_RECORDS = 100_000;

/**
 * The metrics sink of an edge worker. It adds each request to local counts
 * in constant time and keeps a record only for distributions whose requests
 * are logged one by one, so the hit path sends nothing over IPC. `take()`
 * hands the counts over and starts again.
 */
export class EdgeRollupSink implements MetricsSink {
  private minutes = new Map<string, Map<number, DistributionCounters>>();
  private minuteCount = 0;
  private readonly prometheus = new PrometheusCollector();
  private records: RequestRecord[] = [];
  private droppedRecords = 0;
  private pendingFloods = 0;
  private lastDistributionId = "";
  private lastMinuteStartMs = -1;
  private lastCounters: DistributionCounters | undefined;

  /** `logsRequests` returns whether a distribution's requests go to an access log. */
  constructor(private readonly logsRequests: (distributionId: string) => boolean) {}

  record(entry: RequestRecord): void {
    const minuteStartMs = Math.floor(entry.timestampMs / MINUTE_MS) * MINUTE_MS;
    // Consecutive requests mostly share a distribution and a minute, so the last counts are kept at hand.
    if (entry.distributionId === this.lastDistributionId && minuteStartMs === this.lastMinuteStartMs) {
      addRequest(this.lastCounters!, entry);
    } else {
      this.countInMinute(entry, minuteStartMs);
    }
    this.prometheus.record(entry);
    if (!this.logsRequests(entry.distributionId)) return;
    if (this.records.length >= MAX_ROLLUP_RECORDS) {
      this.droppedRecords += 1;
      return;
    }
    this.records.push(entry);
  }

  countHttp2Flood(kind: Http2FloodKind): void {
    this.prometheus.countHttp2Flood(kind);
    this.pendingFloods += 1;
  }

  private countInMinute(entry: RequestRecord, minuteStartMs: number): void {
    let byMinute = this.minutes.get(entry.distributionId);
    if (byMinute === undefined) {
      byMinute = new Map();
      this.minutes.set(entry.distributionId, byMinute);
    }
    let counters = byMinute.get(minuteStartMs);
    if (counters === undefined && this.minuteCount < MAX_ROLLUP_MINUTES) {
      counters = emptyCounters();
      byMinute.set(minuteStartMs, counters);
      this.minuteCount += 1;
    }
    if (counters === undefined) {
      this.droppedRecords += 1;
      return;
    }
    addRequest(counters, entry);
    this.lastDistributionId = entry.distributionId;
    this.lastMinuteStartMs = minuteStartMs;
    this.lastCounters = counters;
  }

  /** Returns whether anything was recorded since the last take. */
  get empty(): boolean {
    return this.minuteCount === 0 && this.records.length === 0 && this.droppedRecords === 0 && this.pendingFloods === 0;
  }

  /** Returns everything recorded since the last call and starts over. */
  take(): EdgeRollup {
    const minutes: EdgeRollup["minutes"] = [];
    for (const [distributionId, byMinute] of this.minutes) {
      for (const [minuteStartMs, counters] of byMinute) {
        minutes.push({ distributionId, minuteStartMs, counters: countersToJson(counters) });
      }
    }
    const rollup: EdgeRollup = {
      minutes,
      prometheus: this.prometheus.takeDeltas(),
      records: this.records,
      droppedRecords: this.droppedRecords,
    };
    this.minutes = new Map();
    this.minuteCount = 0;
    this.lastDistributionId = "";
    this.lastCounters = undefined;
    this.records = [];
    this.droppedRecords = 0;
    this.pendingFloods = 0;
    return rollup;
  }
}

/** The primary's metrics that a worker's rollup is added to. */
export interface RollupTargets {
  /** Adds one distribution-minute of counts to the CloudWatch aggregator. */
  addMinute(distributionId: string, minuteStartMs: number, counters: DistributionCounters): void;
  prometheus: PrometheusCollector | undefined;
  /** Receives the access log records. */
  records: MetricsSink | undefined;
  /** Counts records the worker dropped. */
  countDropped(records: number): void;
}

/** Adds a worker's rollup to the primary's metrics. */
export function applyRollup(rollup: EdgeRollup, targets: RollupTargets): void {
  for (const minute of rollup.minutes) {
    targets.addMinute(minute.distributionId, minute.minuteStartMs, countersFromJson(minute.counters));
  }
  targets.prometheus?.mergeDeltas(rollup.prometheus);
  if (targets.records !== undefined) for (const record of rollup.records) targets.records.record(record);
  if (rollup.droppedRecords > 0) targets.countDropped(rollup.droppedRecords);
}

import type { MinuteAggregator } from "./aggregator.js";
import { CLOUDFRONT_METRICS, CLOUDFRONT_NAMESPACE, CLOUDFRONT_REGION } from "./cloudfront-catalog.js";
import { decodeCustomBucket, decodeDistributionBucket } from "./bucket-encoding.js";
import type { DistributionCounters } from "./distribution-counters.js";
import { emptyStatSet, mergeStatSet, type StatSet } from "./stat-set.js";
import {
  canonicalDimensions,
  distributionSeriesKey,
  RETENTION_TIERS,
  type Dimension,
  type MetricsStore,
} from "./store.js";

const DAY_MS = 24 * 3600 * 1000;
/** ListMetrics returns metrics that received data in the past two weeks, as CloudWatch does. */
export const LIST_METRICS_WINDOW_MS = 14 * DAY_MS;

export interface MetricIdentity {
  namespace: string;
  metricName: string;
  dimensions: Dimension[];
}

export interface StatisticsQuery {
  metric: MetricIdentity;
  /** Start of the first period, already aligned with `alignStartMs`. */
  startMs: number;
  endMs: number;
  periodSeconds: number;
  /** When set, only data published with this unit. */
  unit: string | undefined;
}

/** The statistics of the data published with one unit in one period. */
export interface PeriodStatistics {
  timestampMs: number;
  stats: StatSet;
  unit: string;
}

/**
 * The order in which CloudWatch's GetMetricData picks a unit when a metric
 * has data in several units and the query names none. It returns the
 * statistic of the data in the first unit of this list that has data, and
 * leaves the rest out. LocalStack's CloudWatch tests observed this against
 * AWS (pull request localstack/localstack#9877). The list is in the order of
 * CloudWatch's own "must be a value in the set" message for an invalid unit.
 * NOTE: whether CloudWatch picks the unit per period or over the whole query
 * was not observed; this picks it per period.
 */
const UNIT_PRECEDENCE: readonly string[] = [
  "Megabits", "Terabits", "Gigabits", "Count", "Bytes", "Gigabytes", "Gigabytes/Second", "Kilobytes",
  "Kilobits/Second", "Terabytes", "Terabits/Second", "Bytes/Second", "Percent", "Megabytes", "Megabits/Second",
  "Milliseconds", "Microseconds", "Kilobytes/Second", "Gigabits/Second", "Megabytes/Second", "Bits", "Bits/Second",
  "Count/Second", "Seconds", "Kilobits", "Terabytes/Second", "None",
];

function unitRank(unit: string): number {
  const rank = UNIT_PRECEDENCE.indexOf(unit);
  return rank < 0 ? UNIT_PRECEDENCE.length : rank;
}

/**
 * Keeps one entry per period of `statistics`' result: the data of the unit
 * that comes first in UNIT_PRECEDENCE, as GetMetricData does for a query
 * without a unit.
 */
export function firstUnitPerPeriod(periods: readonly PeriodStatistics[]): PeriodStatistics[] {
  const byPeriod = new Map<number, PeriodStatistics>();
  for (const period of periods) {
    const chosen = byPeriod.get(period.timestampMs);
    if (chosen === undefined || unitRank(period.unit) < unitRank(chosen.unit)) byPeriod.set(period.timestampMs, period);
  }
  return [...byPeriod.values()].sort((a, b) => a.timestampMs - b.timestampMs);
}

export interface CustomDatum {
  metricName: string;
  dimensions: Dimension[];
  timestampMs: number;
  unit: string;
  stats: StatSet;
}

/** Reads metrics from stored buckets merged with the aggregator's unflushed minutes. */
export class MetricsReader {
  private edgeSync: (() => Promise<void>) | undefined;

  constructor(
    private readonly store: MetricsStore,
    private readonly aggregator: MinuteAggregator,
  ) {}

  /** Sets what `sync` waits for: edges in other processes sending the counts they hold. */
  setEdgeSync(edgeSync: () => Promise<void>): void {
    this.edgeSync = edgeSync;
  }

  /** Resolves once the requests that edges served before the call are visible to reads. */
  async sync(): Promise<void> {
    await this.edgeSync?.();
  }

  now(): number {
    return this.aggregator.now();
  }

  /**
   * Rounds a start time down the way CloudWatch does for its age: to the
   * minute within 15 days, to 5 minutes within 63 days, else to the hour.
   */
  alignStartMs(startMs: number): number {
    const ageMs = this.now() - startMs;
    const tier = RETENTION_TIERS.find((t) => ageMs < t.keepForMs) ?? RETENTION_TIERS[RETENTION_TIERS.length - 1]!;
    const stepMs = tier.resolutionSeconds * 1000;
    return Math.floor(startMs / stepMs) * stepMs;
  }

  /**
   * Returns the statistics of each period in [startMs, endMs) that has data,
   * oldest first, with one entry per unit the data was published with, as
   * GetMetricStatistics returns them. A stored bucket counts only when the
   * period is a multiple of its resolution, so a period finer than the data's
   * age allows returns no data points for that range, as CloudWatch does.
   */
  statistics(query: StatisticsQuery): PeriodStatistics[] {
    const periods = new PeriodAccumulator(query);
    for (const bucket of this.bucketsFor(query)) periods.add(bucket);
    return periods.result();
  }

  /**
   * Returns what `statistics` returns, for large queries on the process that
   * also accepts edge connections. The rows are read at once, so no statement
   * stays open across a yield. They are then decoded and merged in slices of
   * about `sliceMs`, with a yield to the event loop between slices.
   */
  async statisticsSliced(query: StatisticsQuery, sliceMs: number): Promise<PeriodStatistics[]> {
    const periods = new PeriodAccumulator(query);
    const buckets = [...this.bucketsFor(query)];
    let sliceStartedAt = performance.now();
    for (const bucket of buckets) {
      periods.add(bucket);
      if (performance.now() - sliceStartedAt > sliceMs) {
        await new Promise<void>((resume) => setImmediate(resume));
        sliceStartedAt = performance.now();
      }
    }
    return periods.result();
  }

  /** Yields the stored buckets and pending minutes of a query's metric, each decoded only when added. */
  private *bucketsFor(query: StatisticsQuery): Generator<PendingBucket> {
    const { metric } = query;
    if (metric.namespace === CLOUDFRONT_NAMESPACE) {
      const definition = CLOUDFRONT_METRICS.get(metric.metricName);
      const distributionId = cloudFrontDistributionId(metric.dimensions);
      if (definition === undefined || distributionId === undefined) return;
      if (query.unit !== undefined && query.unit !== definition.unit) return;
      const seriesKey = distributionSeriesKey(distributionId);
      for (const bucket of this.store.readBuckets(seriesKey, query.startMs, query.endMs)) {
        yield {
          bucketStartMs: bucket.bucketStartMs,
          resolutionSeconds: bucket.resolutionSeconds,
          unit: definition.unit,
          stats: () => definition.derive(decodeDistributionBucket(bucket)),
        };
      }
      const pending: ReadonlyMap<number, DistributionCounters> | undefined = this.aggregator.pendingFor(distributionId);
      for (const [minuteStartMs, counters] of pending ?? []) {
        yield { bucketStartMs: minuteStartMs, resolutionSeconds: 60, unit: definition.unit, stats: () => definition.derive(counters) };
      }
      return;
    }
    const expectedDimensions = JSON.stringify(canonicalDimensions(metric.dimensions));
    for (const series of this.store.findCustomSeries(metric.namespace, metric.metricName)) {
      if (JSON.stringify(series.dimensions) !== expectedDimensions) continue;
      if (query.unit !== undefined && series.unit !== query.unit) continue;
      for (const bucket of this.store.readBuckets(series.seriesKey, query.startMs, query.endMs)) {
        yield {
          bucketStartMs: bucket.bucketStartMs,
          resolutionSeconds: bucket.resolutionSeconds,
          unit: series.unit,
          stats: () => decodeCustomBucket(bucket),
        };
      }
    }
  }

  /** Returns every metric that received data since `sinceMs`, by default in the past two weeks. */
  listMetrics(sinceMs: number = this.now() - LIST_METRICS_WINDOW_MS): MetricIdentity[] {
    const metrics: MetricIdentity[] = [];
    const distributions = new Set<string>();
    const seen = new Set<string>();
    for (const series of this.store.listSeries(sinceMs)) {
      if (series.kind === "distribution") {
        const id = cloudFrontDistributionId(series.dimensions);
        if (id !== undefined) distributions.add(id);
        continue;
      }
      // One metric published with several units is still one metric.
      const key = JSON.stringify([series.namespace, series.metricName, series.dimensions]);
      if (seen.has(key)) continue;
      seen.add(key);
      metrics.push({ namespace: series.namespace, metricName: series.metricName, dimensions: series.dimensions });
    }
    for (const id of this.aggregator.pendingDistributions()) distributions.add(id);
    for (const id of [...distributions].sort()) {
      for (const metricName of CLOUDFRONT_METRICS.keys()) {
        metrics.push({
          namespace: CLOUDFRONT_NAMESPACE,
          metricName,
          dimensions: [
            { Name: "DistributionId", Value: id },
            { Name: "Region", Value: CLOUDFRONT_REGION },
          ],
        });
      }
    }
    return metrics;
  }

  /** Stores custom metric data, adding each datum to its minute. */
  putMetricData(namespace: string, data: CustomDatum[]): void {
    this.store.addCustomMinutes(
      data.map((datum) => ({
        namespace,
        metricName: datum.metricName,
        dimensions: datum.dimensions,
        unit: datum.unit,
        minuteStartMs: Math.floor(datum.timestampMs / 60_000) * 60_000,
        stats: datum.stats,
      })),
    );
  }
}

/** Returns the distribution id when the dimensions are exactly DistributionId and Region=Global. */
function cloudFrontDistributionId(dimensions: Dimension[]): string | undefined {
  if (dimensions.length !== 2) return undefined;
  const region = dimensions.find((d) => d.Name === "Region");
  const distribution = dimensions.find((d) => d.Name === "DistributionId");
  if (region?.Value !== CLOUDFRONT_REGION || distribution === undefined || distribution.Value === "") return undefined;
  return distribution.Value;
}

/** One stored bucket or pending minute of a query, decoded by `stats` when it is added. */
interface PendingBucket {
  bucketStartMs: number;
  resolutionSeconds: number;
  unit: string;
  stats: () => StatSet;
}

/**
 * Sums buckets into the periods of a statistics query. A bucket counts only
 * when the period is a multiple of its resolution, so a period finer than the
 * data's age allows returns no data points for that range, as CloudWatch does.
 */
class PeriodAccumulator {
  private readonly periods = new Map<string, PeriodStatistics>();
  private readonly periodMs: number;

  constructor(private readonly query: StatisticsQuery) {
    this.periodMs = query.periodSeconds * 1000;
  }

  add(bucket: PendingBucket): void {
    const query = this.query;
    if (query.periodSeconds % bucket.resolutionSeconds !== 0) return;
    if (bucket.bucketStartMs < query.startMs || bucket.bucketStartMs >= query.endMs) return;
    const stats = bucket.stats();
    if (stats.sampleCount === 0) return;
    const periodStartMs = query.startMs + Math.floor((bucket.bucketStartMs - query.startMs) / this.periodMs) * this.periodMs;
    const key = `${periodStartMs} ${bucket.unit}`;
    let period = this.periods.get(key);
    if (period === undefined) {
      period = { timestampMs: periodStartMs, stats: emptyStatSet(true), unit: bucket.unit };
      this.periods.set(key, period);
    }
    mergeStatSet(period.stats, stats);
  }

  /** Returns the periods with data, oldest first, one entry per unit. */
  result(): PeriodStatistics[] {
    return [...this.periods.values()].sort((a, b) => a.timestampMs - b.timestampMs || unitRank(a.unit) - unitRank(b.unit));
  }
}

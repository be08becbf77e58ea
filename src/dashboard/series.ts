import type { MetricsReader } from "../metrics/index.js";
import { CLOUDFRONT_NAMESPACE, CLOUDFRONT_REGION } from "../metrics/cloudfront-catalog.js";
import type { StatSet } from "../metrics/stat-set.js";

export type SeriesRange = "hour" | "day" | "week";

interface RangeDefinition {
  spanMs: number;
  periodSeconds: number;
  /** How long a computed series is reused, since a week of minutes is costly to merge on every refresh. */
  cacheForMs: number;
}

/** Each range's span and period: 1-minute points for an hour, 5-minute for a day, hourly for a week. */
export const SERIES_RANGES: Readonly<Record<SeriesRange, RangeDefinition>> = {
  hour: { spanMs: 3600_000, periodSeconds: 60, cacheForMs: 0 },
  day: { spanMs: 24 * 3600_000, periodSeconds: 300, cacheForMs: 15_000 },
  week: { spanMs: 7 * 24 * 3600_000, periodSeconds: 3600, cacheForMs: 60_000 },
};

/**
 * The charted metrics: the AWS/CloudFront metric and the CloudWatch statistic
 * read from it. A period without requests has no data point; counts show it
 * as 0 and rates and latencies as a gap (null).
 */
const CHARTED_METRICS = [
  { metricName: "Requests", statistic: "Sum", emptyValue: 0 },
  { metricName: "BytesDownloaded", statistic: "Sum", emptyValue: 0 },
  { metricName: "CacheHitRate", statistic: "Average", emptyValue: null },
  { metricName: "4xxErrorRate", statistic: "Average", emptyValue: null },
  { metricName: "5xxErrorRate", statistic: "Average", emptyValue: null },
  { metricName: "TotalErrorRate", statistic: "Average", emptyValue: null },
  { metricName: "OriginLatency", statistic: "Average", emptyValue: null },
] as const;

export type ChartedMetricName = (typeof CHARTED_METRICS)[number]["metricName"];

/** One distribution's metrics over a range, as parallel arrays for the charts. */
export interface DistributionSeries {
  distributionId: string;
  range: SeriesRange;
  periodSeconds: number;
  startMs: number;
  endMs: number;
  /** Start of each period, in epoch seconds (uPlot's x values). */
  timestamps: number[];
  metrics: Record<ChartedMetricName, Array<number | null>>;
}

export function isSeriesRange(value: string): value is SeriesRange {
  return Object.hasOwn(SERIES_RANGES, value);
}

function statisticValue(stats: StatSet, statistic: "Sum" | "Average"): number {
  return statistic === "Sum" ? stats.sum : stats.sum / stats.sampleCount;
}

/** Builds series from `MetricsReader.statistics`, the same path that serves CloudWatch GetMetricStatistics. */
export class SeriesReader {
  private readonly cache = new Map<string, { builtAtMs: number; series: DistributionSeries }>();

  constructor(private readonly reader: MetricsReader) {}

  read(distributionId: string, range: SeriesRange): DistributionSeries {
    const definition = SERIES_RANGES[range];
    const nowMs = this.reader.now();
    const cacheKey = `${distributionId}/${range}`;
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined && nowMs - cached.builtAtMs < definition.cacheForMs) return cached.series;

    const series = this.build(distributionId, range, nowMs);
    if (definition.cacheForMs > 0) {
      this.dropStale(nowMs);
      this.cache.set(cacheKey, { builtAtMs: nowMs, series });
    }
    return series;
  }

  private build(distributionId: string, range: SeriesRange, nowMs: number): DistributionSeries {
    const { spanMs, periodSeconds } = SERIES_RANGES[range];
    const periodMs = periodSeconds * 1000;
    // The last period is the one in progress, so the newest requests show at once.
    const endMs = Math.floor(nowMs / periodMs) * periodMs + periodMs;
    const startMs = this.reader.alignStartMs(endMs - spanMs);
    const timestampsMs: number[] = [];
    for (let t = startMs; t < endMs; t += periodMs) timestampsMs.push(t);

    const metrics = {} as Record<ChartedMetricName, Array<number | null>>;
    for (const charted of CHARTED_METRICS) {
      const byPeriod = new Map<number, number>();
      const periods = this.reader.statistics({
        metric: {
          namespace: CLOUDFRONT_NAMESPACE,
          metricName: charted.metricName,
          dimensions: [
            { Name: "DistributionId", Value: distributionId },
            { Name: "Region", Value: CLOUDFRONT_REGION },
          ],
        },
        startMs,
        endMs,
        periodSeconds,
        unit: undefined,
      });
      for (const period of periods) byPeriod.set(period.timestampMs, statisticValue(period.stats, charted.statistic));
      metrics[charted.metricName] = timestampsMs.map((t) => byPeriod.get(t) ?? charted.emptyValue);
    }

    return {
      distributionId,
      range,
      periodSeconds,
      startMs,
      endMs,
      timestamps: timestampsMs.map((t) => t / 1000),
      metrics,
    };
  }

  private dropStale(nowMs: number): void {
    for (const [key, entry] of this.cache) {
      if (nowMs - entry.builtAtMs >= SERIES_RANGES[entry.series.range].cacheForMs) this.cache.delete(key);
    }
  }
}

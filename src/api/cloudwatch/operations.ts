import type { Logger } from "../../common/logger.js";
import type { AlarmEvaluator } from "../../metrics/alarm-evaluator.js";
import type { MetricsReader } from "../../metrics/reader.js";
import { addSample, emptyStatSet, statSetPercentile, type StatSet } from "../../metrics/stat-set.js";
import { SeriesLimitError } from "../../metrics/store.js";
import type { Struct, Value } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";
import { getMetricData } from "./get-metric-data.js";
import { listMetrics } from "./list-metrics.js";
import {
  checkLength,
  checkNamespace,
  checkUnit,
  invalidValue,
  percentileFraction,
  readDimensions,
  STATISTICS,
} from "./validation.js";

export interface OperationContext {
  reader: MetricsReader;
  alarms: AlarmEvaluator;
  /** The account id in alarm ARNs. */
  accountId: string;
  log: Logger;
}

export type OperationHandler = (input: Struct, context: OperationContext) => Struct | undefined | Promise<Struct | undefined>;

/** Maximum time GetMetricStatistics merges buckets before it yields to the event loop. */
const STATISTICS_SLICE_MS = 20;

/** GetMetricStatistics returns at most 1,440 data points per call (CloudWatch quota). */
export const MAX_STATISTICS_DATAPOINTS = 1440;
const MAX_STATISTICS = 5;
const MAX_EXTENDED_STATISTICS = 10;
/** PutMetricData quotas: 1,000 metrics per request, 150 values per metric. */
const MAX_METRIC_DATA = 1000;
const MAX_VALUES_PER_DATUM = 150;
/** PutMetricData accepts time stamps up to two weeks in the past and two hours in the future. */
const MAX_PAST_MS = 14 * 24 * 3600 * 1000;
const MAX_FUTURE_MS = 2 * 3600 * 1000;
/**
 * Bounds of the magnitude of a value other than 0. The PutMetricData
 * reference gives -2^360 to 2^360, and its earlier editions the smallest
 * magnitude, 8.515920e-109 (2^-359): CloudWatch rejects values too small or too large.
 */
const MAX_VALUE_MAGNITUDE = 2 ** 360;
const MIN_VALUE_MAGNITUDE = 2 ** -359;

/** The metric operations. The service adds the alarm operations. */
export const OPERATIONS: Record<string, OperationHandler> = {
  GetMetricStatistics: getMetricStatistics,
  ListMetrics: listMetrics,
  GetMetricData: getMetricData,
  PutMetricData: putMetricData,
};

/**
 * Validates a period against the stored data's resolution: a positive
 * multiple of 60 seconds, because data is kept at one-minute resolution.
 */
export function checkPeriod(path: string, period: number): void {
  if (!Number.isInteger(period) || period < 1) invalidValue(path, period);
  // NOTE: CloudWatch also accepts 1, 5, 10, 20 and 30 seconds for
  // high-resolution metrics; data here is never finer than one minute.
  if (period % 60 !== 0) {
    throw cloudWatchErrors.invalidParameterValue(
      `The parameter ${path} must be a multiple of 60; data is stored at one-minute resolution.`,
    );
  }
}

export function checkTimeRange(startMs: number, endMs: number): void {
  if (!(startMs < endMs)) {
    throw cloudWatchErrors.invalidParameterValue("The parameter StartTime must be less than the parameter EndTime.");
  }
}

/** Returns one statistic of a period, or undefined when the data lacks it (a percentile without a histogram). */
export function statisticValue(stats: StatSet, statistic: string): number | undefined {
  switch (statistic) {
    case "SampleCount":
      return stats.sampleCount;
    case "Sum":
      return stats.sum;
    case "Average":
      return stats.sum / stats.sampleCount;
    case "Minimum":
      return stats.minimum;
    case "Maximum":
      return stats.maximum;
    default: {
      const fraction = percentileFraction(statistic);
      return fraction === undefined ? undefined : statSetPercentile(stats, fraction);
    }
  }
}

async function getMetricStatistics(input: Struct, { reader }: OperationContext): Promise<Struct> {
  const namespace = input.Namespace as string;
  const metricName = input.MetricName as string;
  checkNamespace("Namespace", namespace);
  checkLength("MetricName", metricName, 1, 255);
  const dimensions = readDimensions("Dimensions", input.Dimensions);
  const unit = checkUnit("Unit", input.Unit);
  const period = input.Period as number;
  checkPeriod("Period", period);
  const startMs = input.StartTime as number;
  const endMs = input.EndTime as number;
  checkTimeRange(startMs, endMs);

  const statistics = (input.Statistics ?? []) as string[];
  const extended = (input.ExtendedStatistics ?? []) as string[];
  if (statistics.length === 0 && extended.length === 0) {
    throw cloudWatchErrors.missingParameter("Statistics or ExtendedStatistics");
  }
  // The API reference: specify either Statistics or ExtendedStatistics, but not both.
  if (statistics.length > 0 && extended.length > 0) {
    throw cloudWatchErrors.invalidParameterCombination(
      "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.",
    );
  }
  if (statistics.length > MAX_STATISTICS) {
    throw cloudWatchErrors.invalidParameterValue(`The collection Statistics must not have more than ${MAX_STATISTICS} members.`);
  }
  if (extended.length > MAX_EXTENDED_STATISTICS) {
    throw cloudWatchErrors.invalidParameterValue(
      `The collection ExtendedStatistics must not have more than ${MAX_EXTENDED_STATISTICS} members.`,
    );
  }
  statistics.forEach((s, i) => STATISTICS.has(s) || invalidValue(`Statistics.member.${i + 1}`, s));
  extended.forEach((s, i) => percentileFraction(s) !== undefined || invalidValue(`ExtendedStatistics.member.${i + 1}`, s));

  // The quota is checked from the request alone, before any data is read.
  const alignedStartMs = reader.alignStartMs(startMs);
  const datapoints = Math.ceil((endMs - alignedStartMs) / (period * 1000));
  if (datapoints > MAX_STATISTICS_DATAPOINTS) {
    throw cloudWatchErrors.invalidParameterCombination(
      `You have requested up to ${datapoints} datapoints, which exceeds the limit of ${MAX_STATISTICS_DATAPOINTS}. ` +
        "You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
    );
  }

  // Sliced, so a percentile over weeks of wide histograms does not hold up the edge's connections.
  const periods = await reader.statisticsSliced(
    {
      metric: { namespace, metricName, dimensions },
      startMs: alignedStartMs,
      endMs,
      periodSeconds: period,
      unit,
    },
    STATISTICS_SLICE_MS,
  );
  const Datapoints = periods.map((p): Struct => {
    const point: Struct = { Timestamp: p.timestampMs, Unit: p.unit };
    for (const statistic of statistics) point[statistic] = statisticValue(p.stats, statistic);
    if (extended.length > 0) {
      const values: Struct = {};
      for (const statistic of extended) {
        const value = statisticValue(p.stats, statistic);
        if (value !== undefined) values[statistic] = value;
      }
      if (Object.keys(values).length > 0) point.ExtendedStatistics = values;
    }
    return point;
  });
  return { Label: metricName, Datapoints };
}

function putMetricData(input: Struct, { reader }: OperationContext): undefined {
  const namespace = input.Namespace as string;
  checkNamespace("Namespace", namespace);
  // Namespaces starting with "AWS/" are reserved for AWS services.
  if (namespace.startsWith("AWS/")) invalidValue("Namespace", namespace);

  const entries: Array<{ datum: Struct; path: string }> = [];
  ((input.MetricData ?? []) as Struct[]).forEach((datum, i) => entries.push({ datum, path: `MetricData.member.${i + 1}` }));
  ((input.EntityMetricData ?? []) as Struct[]).forEach((entity, i) =>
    ((entity.MetricData ?? []) as Struct[]).forEach((datum, j) =>
      entries.push({ datum, path: `EntityMetricData.member.${i + 1}.MetricData.member.${j + 1}` }),
    ),
  );
  // CloudWatch rejects an empty MetricData as missing: "The parameter MetricData is required."
  if (entries.length === 0) throw cloudWatchErrors.missingParameter("MetricData");
  if (entries.length > MAX_METRIC_DATA) {
    throw cloudWatchErrors.invalidParameterValue(
      `The collection MetricData must not have a size greater than ${MAX_METRIC_DATA}.`,
    );
  }

  const nowMs = reader.now();
  const data = entries.map(({ datum, path }) => {
    const metricName = datum.MetricName as string;
    checkLength(`${path}.MetricName`, metricName, 1, 255);
    const dimensions = readDimensions(`${path}.Dimensions`, datum.Dimensions);
    const unit = checkUnit(`${path}.Unit`, datum.Unit) ?? "None";
    const resolution = datum.StorageResolution;
    // NOTE: high-resolution data (StorageResolution 1) is accepted but kept at one-minute resolution.
    if (resolution !== undefined && resolution !== 1 && resolution !== 60) invalidValue(`${path}.StorageResolution`, resolution);
    const timestampMs = (datum.Timestamp as number | undefined) ?? nowMs;
    if (timestampMs < nowMs - MAX_PAST_MS || timestampMs > nowMs + MAX_FUTURE_MS) {
      throw cloudWatchErrors.invalidParameterValue(
        `The parameter ${path}.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future.`,
      );
    }
    return { metricName, dimensions, unit, timestampMs, stats: readDatumStatistics(datum, path) };
  });
  try {
    reader.putMetricData(namespace, data);
  } catch (error) {
    if (!(error instanceof SeriesLimitError)) throw error;
    // The model lists no quota error for PutMetricData. LimitExceededFault
    // (Query code LimitExceeded, status 400) is the model's quota error of
    // PutMetricAlarm and the other Put operations. The SDKs decode every
    // error shape of the model on any operation, so clients get a typed error.
    throw cloudWatchErrors.limitExceeded(
      `The request would create ${error.requested} new metric series, but ${error.existing} of the ${error.limit} allowed exist. ` +
        "A series is removed once it has had no data for 455 days; the limit is set with portico up --metrics-max-series.",
    );
  }
  return undefined;
}

/**
 * Reads exactly one of Value, StatisticValues or Values (with optional
 * Counts). An empty Values counts as absent, since it carries no sample.
 */
function readDatumStatistics(datum: Struct, path: string): StatSet {
  const isGiven = (name: string) => datum[name] !== undefined && !(Array.isArray(datum[name]) && datum[name].length === 0);
  const present = ["Value", "StatisticValues", "Values"].filter(isGiven);
  if (present.length === 0) throw cloudWatchErrors.missingParameter(`${path}.Value`);
  if (present.length > 1) {
    throw cloudWatchErrors.invalidParameterCombination(
      `The parameters ${present.map((name) => `${path}.${name}`).join(" and ")} are mutually exclusive and you have specified more than one.`,
    );
  }
  if (datum.Counts !== undefined && !isGiven("Values")) {
    throw cloudWatchErrors.invalidParameterCombination(`The parameter ${path}.Counts requires ${path}.Values.`);
  }
  const checkValue = (valuePath: string, value: Value): number => {
    if (typeof value !== "number" || !Number.isFinite(value)) invalidValue(valuePath, value);
    const magnitude = Math.abs(value);
    if (magnitude > MAX_VALUE_MAGNITUDE || (magnitude !== 0 && magnitude < MIN_VALUE_MAGNITUDE)) {
      throw cloudWatchErrors.invalidParameterValue(
        `The value ${value} for parameter ${valuePath} is invalid; a value other than 0 must be from 8.515920e-109 to 2^360 in magnitude.`,
      );
    }
    return value;
  };

  const stats = emptyStatSet(true);
  if (datum.Value !== undefined) {
    addSample(stats, checkValue(`${path}.Value`, datum.Value));
    return stats;
  }
  if (isGiven("Values")) {
    const values = datum.Values as number[];
    const counts = datum.Counts as number[] | undefined;
    if (values.length > MAX_VALUES_PER_DATUM) {
      throw cloudWatchErrors.invalidParameterValue(
        `The collection ${path}.Values must not have a size greater than ${MAX_VALUES_PER_DATUM}.`,
      );
    }
    if (counts !== undefined && counts.length !== values.length) {
      throw cloudWatchErrors.invalidParameterValue(`The parameters ${path}.Values and ${path}.Counts must have the same length.`);
    }
    values.forEach((value, i) => {
      const count = counts === undefined ? 1 : checkValue(`${path}.Counts.member.${i + 1}`, counts[i]);
      if (count < 0) invalidValue(`${path}.Counts.member.${i + 1}`, count);
      addSample(stats, checkValue(`${path}.Values.member.${i + 1}`, value), count);
    });
    return stats;
  }
  const set = datum.StatisticValues as Struct;
  const sampleCount = checkValue(`${path}.StatisticValues.SampleCount`, set.SampleCount);
  const sum = checkValue(`${path}.StatisticValues.Sum`, set.Sum);
  const minimum = checkValue(`${path}.StatisticValues.Minimum`, set.Minimum);
  const maximum = checkValue(`${path}.StatisticValues.Maximum`, set.Maximum);
  if (sampleCount <= 0) invalidValue(`${path}.StatisticValues.SampleCount`, sampleCount);
  if (minimum > maximum) {
    throw cloudWatchErrors.invalidParameterValue(
      `The parameter ${path}.StatisticValues.Minimum must not be greater than ${path}.StatisticValues.Maximum.`,
    );
  }
  // When Minimum = Maximum and Sum = Minimum × SampleCount, every sample has
  // that value, so percentiles stay available, as CloudWatch documents.
  // Other sets carry no single values.
  if (minimum === maximum && Math.abs(sum - minimum * sampleCount) <= 1e-9 * Math.max(1, Math.abs(sum))) {
    addSample(stats, minimum, sampleCount);
    stats.sum = sum;
    return stats;
  }
  return { sampleCount, sum, minimum, maximum, sketch: undefined };
}

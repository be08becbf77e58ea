import { firstUnitPerPeriod, type PeriodStatistics, type StatisticsQuery } from "../../metrics/reader.js";
import type { Struct } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";
import { evaluateExpression, type Series } from "./expression.js";
import { cutPage, decodeNextToken, encodeNextToken, requestFingerprint } from "./metric-data-pages.js";
import { checkPeriod, checkTimeRange, statisticValue, type OperationContext } from "./operations.js";
import {
  checkLength,
  checkNamespace,
  checkUnit,
  invalidValue,
  percentileFraction,
  readDimensions,
  STATISTICS,
} from "./validation.js";

/** GetMetricData quotas: 500 queries and 100,800 data points per call; more come on later pages. */
const MAX_QUERIES = 500;
export const MAX_METRIC_DATA_DATAPOINTS = 100_800;
/**
 * Data points one request may span over all its pages, checked from the
 * request before any data is read.
 * NOTE: CloudWatch states no such limit. This one bounds the memory of a
 * request, because each page computes every query in full.
 */
export const MAX_PAGED_DATAPOINTS = 10 * MAX_METRIC_DATA_DATAPOINTS;
const ID_PATTERN = /^[a-z][a-zA-Z0-9_]{0,254}$/;

interface MetricQuery {
  id: string;
  label: string;
  returnData: boolean;
  metricStat: Struct | undefined;
  expression: string | undefined;
}

/** Maximum time GetMetricData reads series before it yields to the event loop. */
const QUERY_SLICE_MS = 20;

export async function getMetricData(input: Struct, { reader }: OperationContext): Promise<Struct> {
  const queries = (input.MetricDataQueries ?? []) as Struct[];
  if (queries.length === 0) throw cloudWatchErrors.missingParameter("MetricDataQueries");
  if (queries.length > MAX_QUERIES) {
    throw cloudWatchErrors.invalidParameterValue(
      `The collection MetricDataQueries must not have a size greater than ${MAX_QUERIES}.`,
    );
  }
  const startMs = input.StartTime as number;
  const endMs = input.EndTime as number;
  checkTimeRange(startMs, endMs);
  const scanBy = (input.ScanBy as string | undefined) ?? "TimestampDescending";
  if (scanBy !== "TimestampDescending" && scanBy !== "TimestampAscending") invalidValue("ScanBy", scanBy);
  const maxDatapoints = (input.MaxDatapoints as number | undefined) ?? MAX_METRIC_DATA_DATAPOINTS;
  if (!Number.isInteger(maxDatapoints) || maxDatapoints < 1) invalidValue("MaxDatapoints", maxDatapoints);
  const fingerprint = requestFingerprint(input);
  const token = input.NextToken as string | undefined;
  const cursor = token === undefined ? undefined : decodeNextToken(token, fingerprint);

  const alignedStartMs = reader.alignStartMs(startMs);
  const parsed = queries.map((query, index) => readQuery(query, `MetricDataQueries.member.${index + 1}`));
  const ids = new Set<string>();
  for (const query of parsed) {
    if (ids.has(query.id)) {
      throw cloudWatchErrors.validation(`The value ${query.id} for parameter MetricDataQueries.Id is used more than once.`);
    }
    ids.add(query.id);
  }

  // The quota is checked from the request alone, before any data is read.
  let requested = 0;
  for (const query of parsed) {
    if (query.metricStat === undefined) continue;
    requested += Math.ceil((endMs - alignedStartMs) / ((query.metricStat.Period as number) * 1000));
  }
  if (requested > MAX_PAGED_DATAPOINTS) {
    throw cloudWatchErrors.invalidParameterCombination(
      `You have requested up to ${requested} datapoints, which exceeds the limit of ${MAX_PAGED_DATAPOINTS}. ` +
        "You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
    );
  }

  const byId = new Map(parsed.map((query) => [query.id, query]));
  const computed = new Map<string, Series>();
  const evaluating = new Set<string>();
  const metricIds = parsed.filter((query) => query.metricStat !== undefined).map((query) => query.id);

  const resolve = (id: string): Series => {
    const cached = computed.get(id);
    if (cached) return cached;
    const query = byId.get(id);
    if (query === undefined) throw cloudWatchErrors.validation(`Unknown metric query id '${id}' in an expression.`);
    if (evaluating.has(id)) throw cloudWatchErrors.validation(`The expression '${id}' refers to itself.`);
    evaluating.add(id);
    const series = query.metricStat !== undefined ? readMetricStat(query.metricStat) : evaluate(query);
    evaluating.delete(id);
    computed.set(id, series);
    return series;
  };

  const statisticsQuery = (stat: Struct): StatisticsQuery => {
    const metric = stat.Metric as Struct;
    return {
      metric: {
        namespace: metric.Namespace as string,
        metricName: metric.MetricName as string,
        dimensions: readDimensions("Metric.Dimensions", metric.Dimensions),
      },
      startMs: alignedStartMs,
      endMs,
      periodSeconds: stat.Period as number,
      unit: stat.Unit as string | undefined,
    };
  };
  const readMetricStat = (stat: Struct): Series => seriesOf(stat, reader.statistics(statisticsQuery(stat)));
  const seriesOf = (stat: Struct, periods: PeriodStatistics[]): Series => {
    const series: Series = new Map();
    for (const period of firstUnitPerPeriod(periods)) {
      const value = statisticValue(period.stats, stat.Stat as string);
      if (value !== undefined) series.set(period.timestampMs, value);
    }
    return series;
  };

  const evaluate = (query: MetricQuery): Series => {
    const result = evaluateExpression(query.id, query.expression!, { resolve, metricIds: () => metricIds });
    if (result.kind === "series") return result.points;
    if (result.kind === "array") {
      if (result.items.length === 1) return result.items[0]!;
      // NOTE: CloudWatch returns one result per series for such expressions; this endpoint does not.
      throw cloudWatchErrors.validation(`Error in expression '${query.id}': the expression must return a single time series.`);
    }
    // A scalar is shown at every time stamp that any metric query has.
    const grid: Series = new Map();
    for (const id of metricIds) for (const timestampMs of resolve(id).keys()) grid.set(timestampMs, result.value);
    return grid;
  };

  // Reading the metric series is the heavy part. It runs in slices that hand
  // the event loop back between them, so edge connections that this process
  // accepts and other API requests are not held up by one large query.
  for (const id of metricIds) {
    const stat = byId.get(id)!.metricStat!;
    computed.set(id, seriesOf(stat, await reader.statisticsSliced(statisticsQuery(stat), QUERY_SLICE_MS)));
  }

  const ascending = scanBy === "TimestampAscending";
  const results = parsed
    .filter((query) => query.returnData)
    .map((query) => ({
      id: query.id,
      label: query.label,
      points: [...resolve(query.id).entries()].sort(([a], [b]) => (ascending ? a - b : b - a)),
    }));
  if (cursor !== undefined && cursor.result >= results.length) throw cloudWatchErrors.invalidNextToken();
  const page = cutPage(results, Math.min(maxDatapoints, MAX_METRIC_DATA_DATAPOINTS), cursor, ascending);
  const output: Struct = { MetricDataResults: page.results, Messages: [] };
  if (page.next !== undefined) output.NextToken = encodeNextToken(fingerprint, page.next);
  return output;
}

function readQuery(query: Struct, path: string): MetricQuery {
  const id = query.Id as string;
  if (!ID_PATTERN.test(id)) {
    throw cloudWatchErrors.invalidParameterValue(
      `The value ${id} for parameter ${path}.Id is invalid; an Id starts with a lower-case letter and contains only letters, digits and underscores.`,
    );
  }
  const metricStat = query.MetricStat as Struct | undefined;
  const expression = query.Expression as string | undefined;
  if ((metricStat === undefined) === (expression === undefined)) {
    throw cloudWatchErrors.invalidParameterCombination(
      `Exactly one of ${path}.MetricStat and ${path}.Expression must be specified.`,
    );
  }
  if (metricStat !== undefined) {
    const metric = metricStat.Metric as Struct;
    if (metric.Namespace === undefined) throw cloudWatchErrors.missingParameter(`${path}.MetricStat.Metric.Namespace`);
    if (metric.MetricName === undefined) throw cloudWatchErrors.missingParameter(`${path}.MetricStat.Metric.MetricName`);
    checkNamespace(`${path}.MetricStat.Metric.Namespace`, metric.Namespace as string);
    checkLength(`${path}.MetricStat.Metric.MetricName`, metric.MetricName as string, 1, 255);
    readDimensions(`${path}.MetricStat.Metric.Dimensions`, metric.Dimensions);
    checkPeriod(`${path}.MetricStat.Period`, metricStat.Period as number);
    const stat = metricStat.Stat as string;
    if (!STATISTICS.has(stat) && percentileFraction(stat) === undefined) invalidValue(`${path}.MetricStat.Stat`, stat);
    checkUnit(`${path}.MetricStat.Unit`, metricStat.Unit);
  } else {
    checkLength(`${path}.Expression`, expression!, 1, 2048);
  }
  const defaultLabel = metricStat !== undefined ? ((metricStat.Metric as Struct).MetricName as string) : id;
  return {
    id,
    label: (query.Label as string | undefined) ?? defaultLabel,
    returnData: (query.ReturnData as boolean | undefined) ?? true,
    metricStat,
    expression,
  };
}

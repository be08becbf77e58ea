import type { Struct } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";
import type { OperationContext } from "./operations.js";
import { checkLength, checkNamespace, invalidValue } from "./validation.js";

/** ListMetrics returns up to 500 results per call, then a NextToken. */
export const LIST_METRICS_PAGE_SIZE = 500;
const MAX_DIMENSION_FILTERS = 10;
const RECENTLY_ACTIVE_MS = 3 * 3600 * 1000;

export function listMetrics(input: Struct, { reader }: OperationContext): Struct {
  const namespace = input.Namespace as string | undefined;
  const metricName = input.MetricName as string | undefined;
  if (namespace !== undefined) checkNamespace("Namespace", namespace);
  if (metricName !== undefined) checkLength("MetricName", metricName, 1, 255);
  const filters = (input.Dimensions ?? []) as Struct[];
  if (filters.length > MAX_DIMENSION_FILTERS) {
    throw cloudWatchErrors.invalidParameterValue(
      `The collection Dimensions must not have a size greater than ${MAX_DIMENSION_FILTERS}.`,
    );
  }
  filters.forEach((filter, i) => checkLength(`Dimensions.member.${i + 1}.Name`, filter.Name as string, 1, 255));
  // The only value the model allows: metrics with data in the past three hours.
  if (input.RecentlyActive !== undefined && input.RecentlyActive !== "PT3H") {
    invalidValue("RecentlyActive", input.RecentlyActive);
  }
  const offset = decodeNextToken(input.NextToken as string | undefined);

  const sinceMs = input.RecentlyActive === "PT3H" ? reader.now() - RECENTLY_ACTIVE_MS : undefined;
  const matching = reader.listMetrics(sinceMs).filter((metric) => {
    if (namespace !== undefined && metric.namespace !== namespace) return false;
    if (metricName !== undefined && metric.metricName !== metricName) return false;
    return filters.every((filter) =>
      metric.dimensions.some((d) => d.Name === filter.Name && (filter.Value === undefined || d.Value === filter.Value)),
    );
  });
  const page = matching.slice(offset, offset + LIST_METRICS_PAGE_SIZE);
  const output: Struct = {
    Metrics: page.map((metric) => ({
      Namespace: metric.namespace,
      MetricName: metric.metricName,
      Dimensions: metric.dimensions.map((d) => ({ Name: d.Name, Value: d.Value })),
    })),
  };
  if (offset + LIST_METRICS_PAGE_SIZE < matching.length) output.NextToken = encodeNextToken(offset + LIST_METRICS_PAGE_SIZE);
  return output;
}

function encodeNextToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString("base64url");
}

function decodeNextToken(token: string | undefined): number {
  if (token === undefined) return 0;
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { offset?: unknown };
    if (typeof parsed.offset === "number" && Number.isInteger(parsed.offset) && parsed.offset >= 0) return parsed.offset;
  } catch {
    // Falls through to the error below.
  }
  throw cloudWatchErrors.invalidNextToken();
}

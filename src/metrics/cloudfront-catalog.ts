import type { DistributionCounters } from "./distribution-counters.js";
import { addSample, cloneStatSet, emptyStatSet, type StatSet } from "./stat-set.js";

export const CLOUDFRONT_NAMESPACE = "AWS/CloudFront";
/** CloudFront is a global service, so its metrics carry `Region=Global`. */
export const CLOUDFRONT_REGION = "Global";

export type CloudWatchUnit = "None" | "Percent" | "Milliseconds" | "Bytes" | "Count" | string;

interface MetricDefinition {
  unit: CloudWatchUnit;
  /** Derives this metric's statistics over an interval from the distribution's counters. */
  derive(counters: DistributionCounters): StatSet;
}

/**
 * Builds a count as per-request samples of value 1, so Sum is the count and
 * Minimum, Maximum and Average are 1.
 */
function countSamples(count: number): StatSet {
  const set = emptyStatSet(false);
  if (count > 0) addSample(set, 1, count);
  return set;
}

/**
 * Builds a rate as samples of 100 (the request matched) or 0 (it did not), so the
 * Average over any period is `matching / total * 100`, computed from the
 * counts rather than averaged per minute. The histogram is exact.
 */
function rateSamples(matching: number, total: number): StatSet {
  const set = emptyStatSet(true);
  if (total - matching > 0) addSample(set, 0, total - matching);
  if (matching > 0) addSample(set, 100, matching);
  return set;
}

/**
 * AWS/CloudFront distribution metrics, named and defined as in the CloudFront
 * Developer Guide ("Types of metrics for CloudFront"): dimensions
 * DistributionId and Region=Global; rates are percentages of all viewer
 * requests, except CacheHitRate, which is over cacheable requests.
 */
export const CLOUDFRONT_METRICS: ReadonlyMap<string, MetricDefinition> = new Map<string, MetricDefinition>([
  ["Requests", { unit: "None", derive: (c) => countSamples(c.requests) }],
  ["BytesDownloaded", { unit: "None", derive: (c) => cloneStatSet(c.bytesDownloaded) }],
  ["BytesUploaded", { unit: "None", derive: (c) => cloneStatSet(c.bytesUploaded) }],
  ["TotalErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.status4xx + c.status5xx, c.requests) }],
  ["4xxErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.status4xx, c.requests) }],
  ["5xxErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.status5xx, c.requests) }],
  ["401ErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.statusCounts[401], c.requests) }],
  ["403ErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.statusCounts[403], c.requests) }],
  ["404ErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.statusCounts[404], c.requests) }],
  ["502ErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.statusCounts[502], c.requests) }],
  ["503ErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.statusCounts[503], c.requests) }],
  ["504ErrorRate", { unit: "Percent", derive: (c) => rateSamples(c.statusCounts[504], c.requests) }],
  ["CacheHitRate", { unit: "Percent", derive: (c) => rateSamples(c.hits, c.cacheable) }],
  ["OriginLatency", { unit: "Milliseconds", derive: (c) => cloneStatSet(c.originLatencyMs) }],
]);

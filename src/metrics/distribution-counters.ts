import type { RequestRecord } from "./types.js";
import {
  addSample,
  emptyStatSet,
  mergeStatSet,
  statSetFromJson,
  statSetToJson,
  type StatSet,
  type StatSetJson,
} from "./stat-set.js";

/** Status classes that CloudFront publishes an error rate for. */
export const TRACKED_STATUSES = [401, 403, 404, 502, 503, 504] as const;
export type TrackedStatus = (typeof TRACKED_STATUSES)[number];

/** Counts of one distribution's traffic over one interval, from which every AWS/CloudFront metric derives. */
export interface DistributionCounters {
  requests: number;
  /** Per-request bytes sent, over GET, HEAD and OPTIONS requests. */
  bytesDownloaded: StatSet;
  /** Per-request body bytes received, over POST and PUT requests. */
  bytesUploaded: StatSet;
  status4xx: number;
  status5xx: number;
  statusCounts: Record<TrackedStatus, number>;
  /** Requests that CloudFront counts as cacheable: neither POST nor PUT, with a status from 100 to 399. */
  cacheable: number;
  /** Cacheable requests answered from cache (result type Hit or RefreshHit). */
  hits: number;
  /** Time to the origin's first byte, over requests that went to the origin. */
  originLatencyMs: StatSet;
}

export interface DistributionCountersJson {
  requests: number;
  bytesDownloaded: StatSetJson;
  bytesUploaded: StatSetJson;
  status4xx: number;
  status5xx: number;
  statusCounts: Record<string, number>;
  cacheable: number;
  hits: number;
  originLatencyMs: StatSetJson;
}

export function emptyCounters(): DistributionCounters {
  return {
    requests: 0,
    bytesDownloaded: emptyStatSet(false),
    bytesUploaded: emptyStatSet(false),
    status4xx: 0,
    status5xx: 0,
    statusCounts: { 401: 0, 403: 0, 404: 0, 502: 0, 503: 0, 504: 0 },
    cacheable: 0,
    hits: 0,
    originLatencyMs: emptyStatSet(true),
  };
}

/**
 * Adds one viewer request. The method and status rules follow the CloudFront
 * Developer Guide's distribution metrics: BytesDownloaded counts GET, HEAD and
 * OPTIONS requests, BytesUploaded counts POST and PUT requests, and CacheHitRate
 * leaves out POST and PUT requests and errors. A viewer that left before any
 * response (status 0, logged as 000) counts as a request with the result
 * type Error: not cacheable, and neither a 4xx nor a 5xx error.
 */
export function addRequest(counters: DistributionCounters, record: RequestRecord): void {
  counters.requests += 1;
  const method = record.method === "GET" ? "GET" : record.method.toUpperCase();
  const isUpload = method === "POST" || method === "PUT";
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") {
    addSample(counters.bytesDownloaded, record.bytesDownloaded);
  } else if (isUpload) {
    addSample(counters.bytesUploaded, record.bytesUploaded);
  }

  const status = record.status;
  const isError = status >= 400 && status <= 599;
  if (status >= 400 && status <= 499) counters.status4xx += 1;
  if (status >= 500 && status <= 599) counters.status5xx += 1;
  if (status in counters.statusCounts) counters.statusCounts[status as TrackedStatus] += 1;

  if (!isUpload && status >= 100 && !isError) {
    counters.cacheable += 1;
    if (record.resultType === "Hit" || record.resultType === "RefreshHit") counters.hits += 1;
  }
  const latency = record.originLatencyMs;
  if (latency !== undefined && Number.isFinite(latency) && latency >= 0) {
    addSample(counters.originLatencyMs, latency);
  }
}

export function mergeCounters(target: DistributionCounters, source: DistributionCounters): void {
  target.requests += source.requests;
  mergeStatSet(target.bytesDownloaded, source.bytesDownloaded);
  mergeStatSet(target.bytesUploaded, source.bytesUploaded);
  target.status4xx += source.status4xx;
  target.status5xx += source.status5xx;
  for (const status of TRACKED_STATUSES) target.statusCounts[status] += source.statusCounts[status];
  target.cacheable += source.cacheable;
  target.hits += source.hits;
  mergeStatSet(target.originLatencyMs, source.originLatencyMs);
}

export function countersToJson(counters: DistributionCounters): DistributionCountersJson {
  return {
    ...counters,
    bytesDownloaded: statSetToJson(counters.bytesDownloaded),
    bytesUploaded: statSetToJson(counters.bytesUploaded),
    originLatencyMs: statSetToJson(counters.originLatencyMs),
  };
}

export function countersFromJson(json: DistributionCountersJson): DistributionCounters {
  const counters = emptyCounters();
  counters.requests = json.requests;
  counters.bytesDownloaded = statSetFromJson(json.bytesDownloaded);
  counters.bytesUploaded = statSetFromJson(json.bytesUploaded);
  counters.status4xx = json.status4xx;
  counters.status5xx = json.status5xx;
  for (const status of TRACKED_STATUSES) counters.statusCounts[status] = json.statusCounts[status] ?? 0;
  counters.cacheable = json.cacheable;
  counters.hits = json.hits;
  counters.originLatencyMs = statSetFromJson(json.originLatencyMs);
  return counters;
}

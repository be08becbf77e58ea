import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CredentialStore } from "../api/auth/principal.js";
import { hasSigV4, verifySigV4 } from "../api/auth/sigv4.js";
import { ApiError, authErrors } from "../api/errors.js";
import type { ControlChannel } from "../cluster/types.js";
import type { Logger } from "../common/logger.js";
import type { DistributionDirectory } from "./access-log/distributions.js";
import { CLOUDFRONT_NAMESPACE, CLOUDFRONT_REGION } from "./cloudfront-catalog.js";
import type { MetricsReader } from "./reader.js";

/** The path of the status route on the API port. */
export const STATUS_PATH = "/_portico/status";
export const DEFAULT_STATUS_MINUTES = 5;
export const MAX_STATUS_MINUTES = 60;

export interface DistributionStatusRow {
  id: string;
  domainName: string;
  enabled: boolean;
  version: number;
  /** Live edges that have applied `version`, and all live edges. */
  edgesCurrent: number;
  edgesLive: number;
  requests: number;
  /** Percent of cacheable requests served from cache; null without cacheable requests, so JSON keeps the member. */
  cacheHitRate: number | null;
  /** Percent of requests with a 4xx or 5xx status; null without requests. */
  errorRate: number | null;
}

export interface EdgeStatusRow {
  edgeId: string;
  joinedAtMs: number;
  lastSeenAtMs: number;
  /** Config version each distribution has on the edge. */
  appliedVersions: Record<string, number>;
  /** Distributions whose latest version the edge has not applied yet. */
  behind: string[];
}

/** The body of `GET /_portico/status`. */
export interface StatusReport {
  generatedAtMs: number;
  windowMinutes: number;
  distributions: DistributionStatusRow[];
  edges: EdgeStatusRow[];
  accessLog: { lostRecords: number; pendingRecords: number; retainedFiles: number } | undefined;
}

export interface StatusSources {
  directory: DistributionDirectory;
  bus: ControlChannel;
  reader: MetricsReader;
  accessLog?: () => { lostRecords: number; pendingRecords: number; retainedFiles: number };
}

/** Builds the status report over the last `minutes` minutes. */
export function buildStatusReport(sources: StatusSources, minutes: number): StatusReport {
  const nowMs = sources.reader.now();
  const edges = sources.bus.liveEdges();
  const distributions = sources.directory.all().sort((a, b) => a.id.localeCompare(b.id));

  const rows = distributions.map((distribution): DistributionStatusRow => {
    const sum = (metricName: string): { sum: number; count: number } => {
      const periods = sources.reader.statistics({
        metric: {
          namespace: CLOUDFRONT_NAMESPACE,
          metricName,
          dimensions: [
            { Name: "DistributionId", Value: distribution.id },
            { Name: "Region", Value: CLOUDFRONT_REGION },
          ],
        },
        startMs: sources.reader.alignStartMs(nowMs - minutes * 60_000),
        endMs: nowMs + 60_000,
        periodSeconds: 60,
        unit: undefined,
      });
      let total = 0;
      let count = 0;
      for (const period of periods) {
        total += period.stats.sum;
        count += period.stats.sampleCount;
      }
      return { sum: total, count };
    };
    const requests = sum("Requests");
    // Rates are stored as one sample of 0 or 100 per request, so sum / count is the percentage.
    const errors = sum("TotalErrorRate");
    const hits = sum("CacheHitRate");
    return {
      id: distribution.id,
      domainName: distribution.domainName,
      enabled: distribution.enabled,
      version: distribution.version,
      edgesCurrent: edges.filter((edge) => (edge.appliedVersions.get(distribution.id) ?? 0) >= distribution.version)
        .length,
      edgesLive: edges.length,
      requests: requests.sum,
      cacheHitRate: hits.count === 0 ? null : hits.sum / hits.count,
      errorRate: errors.count === 0 ? null : errors.sum / errors.count,
    };
  });

  const edgeRows = edges.map((edge): EdgeStatusRow => ({
    edgeId: edge.edgeId,
    joinedAtMs: edge.joinedAtMs,
    lastSeenAtMs: edge.lastSeenAtMs,
    appliedVersions: Object.fromEntries(edge.appliedVersions),
    behind: distributions
      .filter((distribution) => (edge.appliedVersions.get(distribution.id) ?? 0) < distribution.version)
      .map((distribution) => distribution.id),
  }));

  return {
    generatedAtMs: nowMs,
    windowMinutes: minutes,
    distributions: rows,
    edges: edgeRows,
    accessLog: sources.accessLog?.(),
  };
}

/**
 * Creates the `GET /_portico/status` handler. The request must be signed
 * with SigV4 by the root key or a user key (any credential scope service),
 * because the report names every distribution and edge.
 */
export function createStatusRoute(
  sources: StatusSources,
  credentials: CredentialStore,
  log: Logger,
): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const emptyBodyHash = createHash("sha256").update("").digest("hex");
  return async (request, response) => {
    const target = request.url ?? "/";
    try {
      const signed = { method: request.method ?? "GET", target, headers: request.headers, rawHeaders: request.rawHeaders };
      if (!hasSigV4(signed)) throw authErrors.missingAuthentication();
      const result = verifySigV4(
        signed,
        credentials,
        Date.now(),
        emptyBodyHash,
      );
      if (result.principal.type !== "root" && result.principal.type !== "user") {
        throw new ApiError("AccessDenied", 403, "Only the account's root or user keys may read the status.");
      }
    } catch (error) {
      const apiError = error instanceof ApiError ? error : undefined;
      const status = apiError?.status ?? 403;
      log.info({ code: apiError?.code, status }, "status request rejected");
      sendJson(response, status, { error: apiError?.code ?? "AccessDenied", message: (error as Error).message });
      return;
    }

    const minutesText = new URL(target, "http://localhost").searchParams.get("minutes");
    const minutes = minutesText === null ? DEFAULT_STATUS_MINUTES : Number(minutesText);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_STATUS_MINUTES) {
      sendJson(response, 400, {
        error: "InvalidParameterValue",
        message: `minutes must be a whole number from 1 to ${MAX_STATUS_MINUTES}, not '${minutesText}'.`,
      });
      return;
    }
    await sources.reader.sync();
    sendJson(response, 200, buildStatusReport(sources, minutes));
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + "\n";
  response.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
  response.end(text);
}

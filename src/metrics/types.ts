/**
 * How the edge answered a request, with the strings CloudFront uses for
 * `x-edge-result-type` in its access logs.
 */
export type EdgeResultType = "Hit" | "RefreshHit" | "Miss" | "LimitExceeded" | "CapacityExceeded" | "Error" | "Redirect";

/** One viewer request as the edge saw it, for metrics and access logs. */
export interface RequestRecord {
  distributionId: string;
  /** When the response finished, in epoch milliseconds. */
  timestampMs: number;
  edgeId: string;
  method: string;
  /** Request path as received, percent-encoded, without the query string. */
  path: string;
  query: string;
  host: string;
  protocol: "http" | "https";
  httpVersion: string;
  status: number;
  /** Bytes sent to the viewer, headers included, as CloudFront counts them. */
  bytesDownloaded: number;
  /** Bytes of request bodies received from the viewer. */
  bytesUploaded: number;
  resultType: EdgeResultType;
  /** Time to the origin's first byte, when the request reached the origin. */
  originLatencyMs: number | undefined;
  /** Time from the request's arrival to the last byte sent. */
  durationMs: number;
  clientIp: string;
  userAgent: string | undefined;
  referer: string | undefined;
  requestId: string;
  /** The Cookie header, for access logs of distributions with Logging.IncludeCookies. */
  cookie?: string | undefined;
  /** The X-Forwarded-For header, for the access log's `x-forwarded-for` field. */
  forwardedFor?: string | string[] | undefined;
}

/** Receives request records. `record` never blocks and never throws. */
export interface MetricsSink {
  record(entry: RequestRecord): void;
}

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
  /*
   * The fields below are set only for requests that an access log records,
   * and stay undefined where the edge does not have the value.
   */
  /** The viewer's TCP source port, for `c-port`. */
  clientPort?: number | undefined;
  /** The TLS version negotiated with the viewer as OpenSSL names it (`TLSv1.3`), for `ssl-protocol`. */
  tlsProtocol?: string | undefined;
  /** The OpenSSL name of the negotiated cipher suite (`ECDHE-RSA-AES128-GCM-SHA256`), for `ssl-cipher`. */
  tlsCipher?: string | undefined;
  /** The Content-Type header of the response, for `sc-content-type`. */
  contentType?: string | undefined;
  /** The Content-Length header of the response, for `sc-content-len`; undefined for a chunked body. */
  contentLength?: number | undefined;
  /** The first and last byte positions of the response's Content-Range, for `sc-range-start` and `sc-range-end`. */
  rangeStart?: number | undefined;
  rangeEnd?: number | undefined;
  /** Bytes the viewer sent: the request head as received plus the body, for `cs-bytes`. */
  requestBytes?: number | undefined;
  /** Time from the request's arrival to the edge handing the response head to the socket, for `time-to-first-byte`. */
  timeToFirstByteMs?: number | undefined;
}

/**
 * The bound an HTTP/2 connection passed when the edge closed it as a flood:
 * frames that cost the server work without carrying requests or request
 * bodies. The same strings are the `kind` label of `portico_edge_http2_floods_total`.
 */
export const HTTP2_FLOOD_KINDS = [
  "window_update",
  "priority",
  "reset",
  "ping",
  "settings",
  "empty_frame",
  "goaway",
  "header_block",
  "overhead",
] as const;

export type Http2FloodKind = (typeof HTTP2_FLOOD_KINDS)[number];

/** Receives request records. `record` never blocks and never throws. */
export interface MetricsSink {
  record(entry: RequestRecord): void;
  /** Counts an HTTP/2 connection closed as a flood. Sinks without connection counters leave it out. */
  countHttp2Flood?(kind: Http2FloodKind): void;
}

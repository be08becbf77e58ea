/**
 * Response headers: what passes from the origin to viewers, and the edge's
 * own headers (X-Cache, Via, X-Amz-Cf-Pop, Cache-Status).
 */

/** Origin response headers the edge never passes on: hop-by-hop ones (RFC 9110 section 7.6.1) and its own. */
const DROPPED_ORIGIN_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "age",
  "via",
  "x-cache",
  "x-amz-cf-id",
  "x-amz-cf-pop",
  "cache-status",
  // The bucket store's reason for a denial, meant for the edge's log only: it names policy
  // statements, conditions and the distribution's ARN.
  "x-amz-error-detail",
]);

export type XCacheValue = "Hit" | "Miss" | "RefreshHit" | "Error" | "Redirect";

/** Returns the `X-Cache` value in CloudFront's format, with Portico as the cache name. */
export function xCacheHeader(value: XCacheValue): string {
  return `${value} from portico`;
}

export interface EdgeIdentity {
  /** `Via` value: `1.1 <edgeId>.portico (Portico)`. */
  via: string;
  pop: string;
}

export function edgeIdentity(edgeId: string): EdgeIdentity {
  return { via: `1.1 ${edgeId}.portico (Portico)`, pop: edgeId };
}

/** Returns the field names that a `Connection` header lists, lower case; they are hop-by-hop too. */
function connectionOptions(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const names = new Set<string>();
  for (const value of Array.isArray(connection) ? connection : [connection]) {
    for (const name of value.split(",")) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== "") names.add(trimmed);
    }
  }
  return names;
}

/**
 * Filters origin headers into a flat `[name, value, ...]` list, without the
 * hop-by-hop fields, including those the origin's `Connection` names (RFC
 * 9110 section 7.6.1). Set-Cookie is dropped when cookies are not
 * forwarded, as CloudFront does, so one viewer's cookie is never cached for
 * the others.
 */
export function passOriginHeaders(
  headers: Record<string, string | string[] | undefined>,
  keepSetCookie: boolean,
): string[] {
  const out: string[] = [];
  const listed = connectionOptions(headers.connection);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_ORIGIN_HEADERS.has(name)) continue;
    if (listed?.has(name) === true) continue;
    if (name === "set-cookie" && !keepSetCookie) continue;
    if (Array.isArray(value)) {
      for (const item of value) out.push(name, item);
    } else {
      out.push(name, value);
    }
  }
  return out;
}

/** Returns a header value of an origin response as one string. */
export function originHeader(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Returns the first value of `name` in a flat `[name, value, ...]` list with lower-case names. */
export function headerIn(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === name) return headers[i + 1];
  }
  return undefined;
}

/**
 * Returns every value of `name` in a flat `[name, value, ...]` list joined
 * with `, `, as a field sent on several lines reads (RFC 9110 section 5.3),
 * or undefined when absent.
 */
export function headerValues(headers: readonly string[], name: string): string | undefined {
  let joined: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === name) joined = joined === undefined ? headers[i + 1] : `${joined}, ${headers[i + 1]}`;
  }
  return joined;
}

/** Joins a repeated request header into one value. */
export function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Appends the edge's headers that do not change per request. */
export function appendEdgeHeaders(headers: string[], identity: EdgeIdentity, xCache: XCacheValue): string[] {
  headers.push("x-cache", xCacheHeader(xCache), "via", identity.via, "x-amz-cf-pop", identity.pop);
  return headers;
}

/** Forward reasons of RFC 9211 section 2.2 that the edge reports. */
export type ForwardReason = "uri-miss" | "vary-miss" | "stale" | "bypass" | "method" | "request";

function withDetail(value: string, detail: string | undefined): string {
  return detail === undefined ? value : `${value}; detail=${detail}`;
}

/**
 * RFC 9211 `Cache-Status` values, with `portico` as the cache name. `ttl` is
 * the freshness left in seconds, negative when a stale copy was served.
 */
export const cacheStatus = {
  hit: (ttlSeconds: number) => `portico; hit; ttl=${ttlSeconds}`,
  /** A stale copy served while a background refresh runs (RFC 5861 section 3). */
  staleWhileRevalidate: (ttlSeconds: number) => `portico; hit; ttl=${ttlSeconds}; detail=stale-while-revalidate`,
  /** A stale copy served because the origin failed; `originStatus` is undefined when it gave no response. */
  staleOnError: (originStatus: number | undefined, ttlSeconds: number) =>
    `portico; fwd=stale${originStatus === undefined ? "" : `; fwd-status=${originStatus}`}; ttl=${ttlSeconds}; detail=stale-if-error`,
  refreshed: (ttlSeconds: number) => `portico; fwd=stale; fwd-status=304; ttl=${ttlSeconds}`,
  /** A stale copy that another request revalidated with a 304 while this one waited for it. */
  refreshedCollapsed: (ttlSeconds: number) => `portico; fwd=stale; fwd-status=304; collapsed; ttl=${ttlSeconds}`,
  miss: (
    forward: "uri-miss" | "vary-miss" | "stale",
    originStatus: number,
    stored: boolean,
    detail?: string,
    ttlSeconds?: number,
  ) =>
    withDetail(
      `portico; fwd=${forward}; fwd-status=${originStatus}${stored ? "; stored" : ""}${ttlSeconds === undefined ? "" : `; ttl=${ttlSeconds}`}`,
      detail,
    ),
  /** An entry another edge worker of this machine had stored. */
  peer: (ttlSeconds: number) => `portico; hit; ttl=${ttlSeconds}; detail=peer`,
  /** A response another request fetched while this one waited for it. */
  collapsed: (forward: "uri-miss" | "stale", originStatus: number, ttlSeconds: number) =>
    `portico; fwd=${forward}; fwd-status=${originStatus}; collapsed; ttl=${ttlSeconds}`,
  /** The edge's stored 502 or 504, fetched by another request while this one waited for it. */
  originFailureCollapsed: (forward: "uri-miss" | "stale", detail: string, ttlSeconds: number) =>
    `portico; fwd=${forward}; collapsed; ttl=${ttlSeconds}; detail=${detail}`,
  /**
   * The edge's own 502 or 504 for an origin that gave no response, so with no
   * fwd-status; `ttlSeconds` is given when the response was stored.
   */
  originFailure: (forward: "uri-miss" | "stale", detail: string, ttlSeconds?: number) =>
    `portico; fwd=${forward}${ttlSeconds === undefined ? "" : `; stored; ttl=${ttlSeconds}`}; detail=${detail}`,
  bypass: (originStatus: number, detail?: string) => withDetail(`portico; fwd=bypass; fwd-status=${originStatus}`, detail),
  method: (originStatus: number) => `portico; fwd=method; fwd-status=${originStatus}`,
};

let dateSecond = -1;
let dateValue = "";

/** Returns the `Date` value for now (RFC 9110 section 5.6.7), formatting it again only when the second changes. */
export function currentHttpDate(): string {
  const nowMs = Date.now();
  const second = Math.floor(nowMs / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(nowMs).toUTCString();
  }
  return dateValue;
}

import type { IncomingHttpHeaders } from "node:http";
import type {
  AcceptEncodingKeyPolicy,
  CacheKeyPolicy,
  CookieKeyPolicy,
  ForwardPolicy,
  HeaderForwardPolicy,
  QueryStringKeyPolicy,
} from "./policy.js";

/** Hop-by-hop headers (RFC 9110 section 7.6.1) and those the edge sets itself, never forwarded. */
const NOT_FORWARDED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
  "via",
  "x-amz-cf-id",
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "if-range",
  "range",
]);

export interface CacheKeyInput {
  distributionId: string;
  /** The path sent to the origin, percent-encoded as received. */
  path: string;
  /** The query string as received, without `?`. */
  rawQuery: string;
  headers: IncomingHttpHeaders;
}

export interface CacheKeyResult {
  key: string;
  /** The query string for the origin, without `?`; empty when none is forwarded. */
  forwardedQuery: string;
  /** Viewer headers for the origin, lower-case names. */
  forwardedHeaders: Record<string, string>;
  /** The normalized Accept-Encoding in the key (`br,gzip`, `gzip`, `br`), or empty. */
  acceptEncoding: string;
}

function headerText(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(", ") : value;
}

function decodeQueryName(rawName: string): string {
  try {
    return decodeURIComponent(rawName.replace(/\+/g, " "));
  } catch {
    return rawName;
  }
}

function queryNameSelected(policy: QueryStringKeyPolicy, name: string): boolean {
  switch (policy.mode) {
    case "none":
      return false;
    case "all":
      return true;
    case "whitelist":
      return policy.names.has(name);
    case "allExcept":
      return !policy.names.has(name);
  }
}

/** Keeps the query parameters either policy selects, in their order and encoding as received. */
function selectQuery(rawQuery: string, ...policies: QueryStringKeyPolicy[]): string {
  if (rawQuery === "" || policies.every((policy) => policy.mode === "none")) return "";
  if (policies.some((policy) => policy.mode === "all")) return rawQuery;
  const kept: string[] = [];
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const name = decodeQueryName(equals < 0 ? pair : pair.slice(0, equals));
    if (policies.some((policy) => queryNameSelected(policy, name))) kept.push(pair);
  }
  return kept.join("&");
}

function cookieNameSelected(policy: CookieKeyPolicy, name: string): boolean {
  switch (policy.mode) {
    case "none":
      return false;
    case "all":
      return true;
    case "whitelist":
      return policy.patterns.some((pattern) => pattern.test(name));
    case "allExcept":
      return !policy.patterns.some((pattern) => pattern.test(name));
  }
}

function selectCookies(cookieHeader: string | undefined, ...policies: CookieKeyPolicy[]): string {
  if (cookieHeader === undefined || policies.every((policy) => policy.mode === "none")) return "";
  const pairs: Array<[string, string]> = [];
  for (const part of cookieHeader.split(";")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const equals = trimmed.indexOf("=");
    const name = equals < 0 ? trimmed : trimmed.slice(0, equals);
    if (!policies.some((policy) => cookieNameSelected(policy, name))) continue;
    pairs.push([name, trimmed]);
  }
  // CloudFront sorts forwarded cookies by name, so cookie order never splits the cache.
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs.map(([, pair]) => pair).join("; ");
}

/**
 * Returns the normalized Accept-Encoding that CloudFront keys on and
 * forwards: `br,gzip`, `br`, `gzip` or empty, keeping only the enabled
 * codings that the viewer accepts with a non-zero q-value (RFC 9110 section 12.5.3).
 */
export function normalizeAcceptEncoding(header: string | undefined, enabled: AcceptEncodingKeyPolicy): string {
  if (header === undefined || (!enabled.gzip && !enabled.br)) return "";
  let gzip = false;
  let br = false;
  for (const item of header.split(",")) {
    const [codingPart, ...parameters] = item.split(";");
    const coding = codingPart!.trim().toLowerCase();
    const q = parameters.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith("q="));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    if (coding === "gzip" || coding === "x-gzip") gzip = true;
    else if (coding === "br") br = true;
  }
  const codings: string[] = [];
  if (br && enabled.br) codings.push("br");
  if (gzip && enabled.gzip) codings.push("gzip");
  return codings.join(",");
}

function headerForwarded(policy: HeaderForwardPolicy, name: string): boolean {
  switch (policy.mode) {
    case "none":
      return false;
    case "whitelist":
      return policy.names.has(name);
    case "allViewer":
      return true;
    case "allExcept":
      return !policy.names.has(name);
  }
}

/**
 * Computes the cache key of a viewer request and, from the same selection,
 * what is forwarded to the origin: the key's query parameters, headers and
 * cookies, plus what the origin request policy adds. Values the origin
 * request policy adds never enter the key; the origin's Vary can still make
 * them part of a secondary key.
 */
export function buildCacheKey(input: CacheKeyInput, policy: CacheKeyPolicy, forward?: ForwardPolicy): CacheKeyResult {
  const forwardPolicy = forward ?? NOTHING_FORWARDED;
  const keyQuery = selectQuery(input.rawQuery, policy.queryStrings);
  const forwardedQuery = selectQuery(input.rawQuery, policy.queryStrings, forwardPolicy.queryStrings);
  const forwardedHeaders: Record<string, string> = {};

  if (policy.allHeaders || forwardPolicy.headers.mode !== "none") {
    for (const [name, value] of Object.entries(input.headers)) {
      const text = headerText(value);
      if (text === undefined || NOT_FORWARDED_HEADERS.has(name)) continue;
      if (policy.allHeaders || headerForwarded(forwardPolicy.headers, name)) forwardedHeaders[name] = text;
    }
    // Accept-Encoding goes out normalized or not at all, and cookies go out filtered below.
    if (forwardedHeaders["accept-encoding"] !== undefined) delete forwardedHeaders["accept-encoding"];
  }

  let key = `${input.distributionId}\n${input.path}\n${keyQuery}`;
  for (const name of policy.headers) {
    const text = name === "host" ? headerText(input.headers.host) : headerText(input.headers[name]);
    key += `\nh:${name}=${text ?? ""}`;
    if (text !== undefined) forwardedHeaders[name] = text;
  }

  const acceptEncoding = normalizeAcceptEncoding(headerText(input.headers["accept-encoding"]), policy.acceptEncoding);
  if (policy.acceptEncoding.gzip || policy.acceptEncoding.br) key += `\ne:${acceptEncoding}`;
  if (acceptEncoding !== "") forwardedHeaders["accept-encoding"] = acceptEncoding;
  else if (forwardedHeaders["accept-encoding"] !== undefined && !policy.headers.includes("accept-encoding") && !policy.allHeaders) {
    delete forwardedHeaders["accept-encoding"];
  }

  const cookieHeader = headerText(input.headers.cookie);
  const keyCookies = selectCookies(cookieHeader, policy.cookies);
  if (policy.cookies.mode !== "none") key += `\nc:${keyCookies}`;
  const cookies = selectCookies(cookieHeader, policy.cookies, forwardPolicy.cookies);
  if (cookies !== "") forwardedHeaders.cookie = cookies;
  else if (forwardedHeaders.cookie !== undefined) delete forwardedHeaders.cookie;

  return { key, forwardedQuery, forwardedHeaders, acceptEncoding };
}

const NOTHING_FORWARDED: ForwardPolicy = {
  queryStrings: { mode: "none" },
  cookies: { mode: "none" },
  headers: { mode: "none" },
};

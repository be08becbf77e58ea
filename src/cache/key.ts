import type { IncomingHttpHeaders } from "node:http";
import type { CacheKeyPolicy } from "./policy.js";

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

function selectQuery(rawQuery: string, policy: CacheKeyPolicy): string {
  const queryStrings = policy.queryStrings;
  if (queryStrings.mode === "none" || rawQuery === "") return "";
  if (queryStrings.mode === "all") return rawQuery;
  // Whitelisted parameters keep their order and their encoding as received.
  const kept: string[] = [];
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const name = decodeQueryName(equals < 0 ? pair : pair.slice(0, equals));
    if (queryStrings.names.has(name)) kept.push(pair);
  }
  return kept.join("&");
}

function selectCookies(cookieHeader: string | undefined, policy: CacheKeyPolicy): string {
  const cookies = policy.cookies;
  if (cookies.mode === "none" || cookieHeader === undefined) return "";
  const pairs: Array<[string, string]> = [];
  for (const part of cookieHeader.split(";")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const equals = trimmed.indexOf("=");
    const name = equals < 0 ? trimmed : trimmed.slice(0, equals);
    if (cookies.mode === "whitelist" && !cookies.patterns.some((pattern) => pattern.test(name))) continue;
    pairs.push([name, trimmed]);
  }
  // CloudFront sorts forwarded cookies by name, so cookie order never splits the cache.
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs.map(([, pair]) => pair).join("; ");
}

/**
 * Computes the cache key of a viewer request and, from the same selection,
 * what is forwarded to the origin: the query string, the whitelisted headers
 * and the whitelisted cookies.
 */
export function buildCacheKey(input: CacheKeyInput, policy: CacheKeyPolicy): CacheKeyResult {
  const forwardedQuery = selectQuery(input.rawQuery, policy);
  const forwardedHeaders: Record<string, string> = {};

  if (policy.allHeaders) {
    for (const [name, value] of Object.entries(input.headers)) {
      const text = headerText(value);
      if (text !== undefined && !NOT_FORWARDED_HEADERS.has(name)) forwardedHeaders[name] = text;
    }
  }

  let key = `${input.distributionId}\n${input.path}\n${forwardedQuery}`;
  for (const name of policy.headers) {
    const text = name === "host" ? headerText(input.headers.host) : headerText(input.headers[name]);
    key += `\nh:${name}=${text ?? ""}`;
    if (text !== undefined) forwardedHeaders[name] = text;
  }

  const cookies = selectCookies(headerText(input.headers.cookie), policy);
  if (policy.cookies.mode !== "none") key += `\nc:${cookies}`;
  if (cookies !== "") forwardedHeaders.cookie = cookies;
  else delete forwardedHeaders.cookie;

  return { key, forwardedQuery, forwardedHeaders };
}

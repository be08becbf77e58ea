/**
 * Freshness of origin responses under a cache behavior's TTL settings, as the
 * CloudFront Developer Guide describes it in "Managing how long content stays
 * in the cache (expiration)".
 */

/** The TTL settings of a cache behavior or cache policy, in seconds. */
export interface TtlSettings {
  minTtlSeconds: number;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
}

/** Status codes cached with the behavior's TTLs. */
const CACHEABLE_SUCCESS_STATUSES = new Set([200, 203, 300, 301, 410]);

/**
 * Error status codes that CloudFront caches for the error caching minimum
 * TTL, whose default is 10 seconds.
 */
const CACHEABLE_ERROR_STATUSES = new Set([404, 414, 500, 501, 502, 503, 504]);
export const ERROR_CACHING_TTL_SECONDS = 10;

/** Why a response was not stored; the same strings go to logs and Cache-Status details. */
export type NoStoreReason = "status" | "origin-no-cache" | "zero-ttl" | "too-large" | "policy";

export type FreshnessDecision =
  | { store: true; ttlSeconds: number }
  | { store: false; reason: NoStoreReason };

/** Parsed `Cache-Control` directives that freshness depends on. */
export interface CacheControl {
  noCache: boolean;
  noStore: boolean;
  isPrivate: boolean;
  maxAgeSeconds: number | undefined;
  sMaxAgeSeconds: number | undefined;
}

/** Parses a `Cache-Control` header value (RFC 9111 section 5.2), ignoring unknown directives. */
export function parseCacheControl(value: string | undefined): CacheControl {
  const result: CacheControl = {
    noCache: false,
    noStore: false,
    isPrivate: false,
    maxAgeSeconds: undefined,
    sMaxAgeSeconds: undefined,
  };
  if (value === undefined) return result;

  for (const part of value.split(",")) {
    const equals = part.indexOf("=");
    const name = (equals < 0 ? part : part.slice(0, equals)).trim().toLowerCase();
    const argument = equals < 0 ? undefined : part.slice(equals + 1).trim().replace(/^"|"$/g, "");
    switch (name) {
      case "no-cache":
        result.noCache = true;
        break;
      case "no-store":
        result.noStore = true;
        break;
      case "private":
        result.isPrivate = true;
        break;
      case "max-age":
        result.maxAgeSeconds = parseDeltaSeconds(argument) ?? result.maxAgeSeconds;
        break;
      case "s-maxage":
        result.sMaxAgeSeconds = parseDeltaSeconds(argument) ?? result.sMaxAgeSeconds;
        break;
    }
  }
  return result;
}

/** Parses delta-seconds (RFC 9111 section 1.2.2); an invalid value counts as absent. */
export function parseDeltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Math.min(Number(value), 2 ** 31);
}

/** The origin headers that freshness reads, lower-case names. */
export interface FreshnessHeaders {
  cacheControl: string | undefined;
  expires: string | undefined;
  date: string | undefined;
}

/**
 * Decides whether and for how long a response is cached.
 *
 * - Error statuses that CloudFront caches are kept for 10 seconds.
 * - With MinTTL 0, origin `no-cache`, `no-store` and `private` are obeyed and
 *   the response is not cached. With MinTTL above 0, CloudFront caches it for
 *   MinTTL regardless.
 * - The origin's lifetime is `s-maxage`, else `max-age`, else `Expires`
 *   minus `Date`; it is clamped to [MinTTL, MaxTTL].
 * - Without a lifetime from the origin, the TTL is max(MinTTL, DefaultTTL).
 */
export function decideFreshness(
  status: number,
  headers: FreshnessHeaders,
  ttl: TtlSettings,
  nowMs: number,
): FreshnessDecision {
  if (CACHEABLE_ERROR_STATUSES.has(status)) return { store: true, ttlSeconds: ERROR_CACHING_TTL_SECONDS };
  if (!CACHEABLE_SUCCESS_STATUSES.has(status)) return { store: false, reason: "status" };

  const cacheControl = parseCacheControl(headers.cacheControl);
  let ttlSeconds: number;
  if (cacheControl.noCache || cacheControl.noStore || cacheControl.isPrivate) {
    if (ttl.minTtlSeconds === 0) return { store: false, reason: "origin-no-cache" };
    ttlSeconds = ttl.minTtlSeconds;
  } else {
    const lifetimeSeconds = originLifetimeSeconds(cacheControl, headers, nowMs);
    ttlSeconds =
      lifetimeSeconds === undefined
        ? Math.max(ttl.minTtlSeconds, ttl.defaultTtlSeconds)
        : Math.min(Math.max(lifetimeSeconds, ttl.minTtlSeconds), ttl.maxTtlSeconds);
  }

  if (ttlSeconds <= 0) return { store: false, reason: "zero-ttl" };
  return { store: true, ttlSeconds };
}

/** Returns the origin's freshness lifetime (RFC 9111 section 4.2.1), or undefined when it gives none. */
function originLifetimeSeconds(
  cacheControl: CacheControl,
  headers: FreshnessHeaders,
  nowMs: number,
): number | undefined {
  if (cacheControl.sMaxAgeSeconds !== undefined) return cacheControl.sMaxAgeSeconds;
  if (cacheControl.maxAgeSeconds !== undefined) return cacheControl.maxAgeSeconds;
  if (headers.expires === undefined) return undefined;

  // An invalid Expires, such as "0", means already expired (RFC 9111 section 5.3).
  const expiresMs = Date.parse(headers.expires);
  if (!Number.isFinite(expiresMs)) return 0;
  const dateMs = headers.date === undefined ? Number.NaN : Date.parse(headers.date);
  const baseMs = Number.isFinite(dateMs) ? dateMs : nowMs;
  return Math.max(0, Math.floor((expiresMs - baseMs) / 1000));
}

/** Parses the origin's `Age` header (RFC 9111 section 5.1); invalid values count as 0. */
export function parseAgeSeconds(value: string | undefined): number {
  return parseDeltaSeconds(value?.trim()) ?? 0;
}

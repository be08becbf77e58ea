/**
 * Freshness of origin responses under a cache behavior's TTL settings, as the
 * CloudFront Developer Guide describes it in "Managing how long content stays
 * in the cache (expiration)".
 */

import { parseCdnCacheControl } from "./cdn-cache-control.js";

/** The TTL settings of a cache behavior or cache policy, in seconds. */
export interface TtlSettings {
  minTtlSeconds: number;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
}

/** Status codes cached with the behavior's TTLs. */
const CACHEABLE_SUCCESS_STATUSES = new Set([200, 203, 300, 301, 302, 303, 410]);

/** Redirects that CloudFront caches with the behavior's TTLs only when the origin sent Cache-Control. */
const REDIRECTS_CACHED_WITH_CACHE_CONTROL = new Set([307, 308]);

/**
 * Error status codes that CloudFront always caches, for the error caching
 * minimum TTL (10 seconds by default) or the origin's longer lifetime.
 */
const CACHEABLE_ERROR_STATUSES = new Set([404, 414, 500, 501, 502, 503, 504]);

/** Error status codes that CloudFront caches only when the origin sent `max-age` or `s-maxage`. */
const ERRORS_CACHED_WITH_LIFETIME = new Set([400, 403, 405, 412, 415]);

/**
 * Error status codes for which the origin's `no-store`, `no-cache` and
 * `private` prevent caching; for other errors CloudFront ignores them.
 */
const ERRORS_OBEYING_NO_CACHE = new Set([404, 410, 414, 501]);

export const ERROR_CACHING_TTL_SECONDS = 10;

/** The reason a response was not stored; the same strings go to logs and Cache-Status details. */
export type NoStoreReason =
  | "status"
  | "origin-no-cache"
  | "zero-ttl"
  | "stale-on-arrival"
  | "too-large"
  | "policy"
  | "vary-star"
  | "purged";

/** How long a stored response may be used, and how long past that when stale. */
export interface StoreDecision {
  store: true;
  ttlSeconds: number;
  /** RFC 5861 section 3: seconds past staleness served while a refresh runs in the background. */
  staleWhileRevalidateSeconds: number;
  /** RFC 5861 section 4: seconds past staleness served when the origin fails; undefined when the origin gave none. */
  staleIfErrorSeconds: number | undefined;
  /** RFC 9111 section 5.2.2.2: a stale copy is never served without a successful revalidation. */
  mustRevalidate: boolean;
}

export type FreshnessDecision = StoreDecision | { store: false; reason: NoStoreReason };

/** Parsed `Cache-Control` directives that freshness depends on. */
export interface CacheControl {
  noCache: boolean;
  noStore: boolean;
  isPrivate: boolean;
  mustRevalidate: boolean;
  maxAgeSeconds: number | undefined;
  sMaxAgeSeconds: number | undefined;
  staleWhileRevalidateSeconds: number | undefined;
  staleIfErrorSeconds: number | undefined;
}

/**
 * Parses a `Cache-Control` header value (RFC 9111 section 5.2), ignoring unknown directives. A
 * directive given twice keeps its first valid value, as RFC 9111 section 4.2.1 allows.
 */
export function parseCacheControl(value: string | undefined): CacheControl {
  const result: CacheControl = {
    noCache: false,
    noStore: false,
    isPrivate: false,
    mustRevalidate: false,
    maxAgeSeconds: undefined,
    sMaxAgeSeconds: undefined,
    staleWhileRevalidateSeconds: undefined,
    staleIfErrorSeconds: undefined,
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
      case "must-revalidate":
      case "proxy-revalidate":
        result.mustRevalidate = true;
        break;
      case "max-age":
        result.maxAgeSeconds ??= parseDeltaSeconds(argument);
        break;
      case "s-maxage":
        result.sMaxAgeSeconds ??= parseDeltaSeconds(argument);
        break;
      case "stale-while-revalidate":
        result.staleWhileRevalidateSeconds ??= parseDeltaSeconds(argument);
        break;
      case "stale-if-error":
        result.staleIfErrorSeconds ??= parseDeltaSeconds(argument);
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
  /** RFC 9213 `CDN-Cache-Control`, which overrides Cache-Control for this cache. */
  cdnCacheControl?: string | undefined;
  expires: string | undefined;
  date: string | undefined;
  /** The origin's `Age`, which counts against the lifetime (RFC 9111 section 4.2.3). */
  age?: string | undefined;
  /** `ETag` and `Last-Modified`, without which a response that arrives stale is not stored. */
  etag?: string | undefined;
  lastModified?: string | undefined;
}

/** Returns the error caching minimum TTL of `status`: the distribution's own, else the default. */
export function errorCachingTtlSeconds(errorCachingMinTtlSeconds: ReadonlyMap<number, number>, status: number): number {
  return errorCachingMinTtlSeconds.get(status) ?? ERROR_CACHING_TTL_SECONDS;
}

/**
 * Decides whether and for how long a response is cached.
 *
 * - The edge reads CDN-Cache-Control when it is present and usable, else
 *   Cache-Control (RFC 9213 section 2.1). Either way the behavior's TTLs bound the result.
 * - Error statuses are kept for their error caching minimum TTL (the
 *   CustomErrorResponse's ErrorCachingMinTTL when one is configured for the
 *   status, else 10 seconds), or for the origin's lifetime when that is
 *   longer, as "Control how long CloudFront caches errors" describes. 400,
 *   403, 405, 412 and 415 are cached only with an origin `max-age` or
 *   `s-maxage`; 404, 410, 414 and 501 are not cached with an origin
 *   `no-store`, `no-cache` or `private`.
 * - 302 and 303 are cached like 200; 307 and 308 only when the origin sent
 *   Cache-Control.
 * - With MinTTL 0, origin `no-cache`, `no-store` and `private` are obeyed and
 *   the response is not cached. With MinTTL above 0, CloudFront caches it for
 *   MinTTL regardless.
 * - The origin's lifetime is `s-maxage`, else `max-age`, else `Expires`
 *   minus `Date`; it is clamped to [MinTTL, MaxTTL].
 * - Without a lifetime from the origin, the TTL is max(MinTTL, DefaultTTL).
 * - The TTL is compared with the response's current age, which starts at the
 *   origin's `Age` (RFC 9111 section 4.2.3). A MinTTL above 0, and the error
 *   caching minimum TTL of a cached error, keep the response fresh for that
 *   long after it arrives, however old it is.
 * - A response whose age already reaches its TTL is stale on arrival. It is
 *   stored when it has a validator, so that the next request revalidates it,
 *   as CloudFront caches a response with a TTL of 0 and revalidates it with
 *   every request. Without a validator it is stored only while a
 *   stale-while-revalidate or stale-if-error window, counted from when it
 *   went stale, is still open.
 *
 * `ttlSeconds` of a stored response is its freshness lifetime: it stays fresh
 * while its current age is below it.
 */
export function decideFreshness(
  status: number,
  headers: FreshnessHeaders,
  ttl: TtlSettings,
  nowMs: number,
  errorCachingMinTtlSeconds: ReadonlyMap<number, number> = NO_ERROR_OVERRIDES,
): FreshnessDecision {
  const cacheControl = parseCdnCacheControl(headers.cdnCacheControl) ?? parseCacheControl(headers.cacheControl);
  const initialAgeSeconds = parseAgeSeconds(headers.age);
  const staleness = {
    staleWhileRevalidateSeconds: cacheControl.mustRevalidate ? 0 : (cacheControl.staleWhileRevalidateSeconds ?? 0),
    staleIfErrorSeconds: cacheControl.mustRevalidate ? 0 : cacheControl.staleIfErrorSeconds,
    mustRevalidate: cacheControl.mustRevalidate,
  };

  const configuredErrorTtl = errorCachingMinTtlSeconds.get(status);
  const headerLifetime = cacheControl.sMaxAgeSeconds ?? cacheControl.maxAgeSeconds;
  const cachedError =
    configuredErrorTtl !== undefined ||
    CACHEABLE_ERROR_STATUSES.has(status) ||
    (ERRORS_CACHED_WITH_LIFETIME.has(status) && headerLifetime !== undefined);
  if (cachedError) {
    const noCache = cacheControl.noCache || cacheControl.noStore || cacheControl.isPrivate;
    if (noCache && ERRORS_OBEYING_NO_CACHE.has(status)) return { store: false, reason: "origin-no-cache" };
    // The longer of the origin's lifetime, at most MaxTTL, and the error caching minimum TTL.
    const minimum = configuredErrorTtl ?? ERROR_CACHING_TTL_SECONDS;
    const lifetime = originLifetimeSeconds(cacheControl, headers, nowMs);
    const errorTtlSeconds = lifetime === undefined ? minimum : Math.max(Math.min(lifetime, ttl.maxTtlSeconds), minimum);
    if (errorTtlSeconds <= 0) return { store: false, reason: "zero-ttl" };
    return storeDecision(withMinimumAfterArrival(errorTtlSeconds, initialAgeSeconds, minimum), initialAgeSeconds, staleness, headers);
  }
  const cacheableRedirect = REDIRECTS_CACHED_WITH_CACHE_CONTROL.has(status) && headers.cacheControl !== undefined;
  if (!CACHEABLE_SUCCESS_STATUSES.has(status) && !cacheableRedirect) return { store: false, reason: "status" };

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

  ttlSeconds = withMinimumAfterArrival(ttlSeconds, initialAgeSeconds, ttl.minTtlSeconds);
  return storeDecision(ttlSeconds, initialAgeSeconds, staleness, headers);
}

/** Decides whether a response with `ttlSeconds` that arrived `initialAgeSeconds` old is stored. */
function storeDecision(
  ttlSeconds: number,
  initialAgeSeconds: number,
  staleness: Omit<StoreDecision, "store" | "ttlSeconds">,
  headers: FreshnessHeaders,
): FreshnessDecision {
  // RFC 9111 section 4.2: a response is fresh while its lifetime exceeds its current age.
  const freshSeconds = ttlSeconds - initialAgeSeconds;
  if (freshSeconds > 0) return { store: true, ttlSeconds, ...staleness };

  // Stale on arrival. With a validator, the stored copy lets the next request revalidate it.
  if (headers.etag !== undefined || headers.lastModified !== undefined) return { store: true, ttlSeconds, ...staleness };

  // Without one, the copy is usable only while a stale window is still open (RFC 5861).
  const staleWindowSeconds = Math.max(staleness.staleWhileRevalidateSeconds, staleness.staleIfErrorSeconds ?? 0);
  if (freshSeconds + staleWindowSeconds > 0) return { store: true, ttlSeconds, ...staleness };
  return { store: false, reason: ttlSeconds <= 0 ? "zero-ttl" : "stale-on-arrival" };
}

/**
 * Raises a TTL so that the response stays fresh for `minimumSeconds` after
 * it arrives, whatever its age, as CloudFront caches a response for at least
 * MinTTL. A minimum of 0 leaves the TTL as it is.
 */
function withMinimumAfterArrival(ttlSeconds: number, initialAgeSeconds: number, minimumSeconds: number): number {
  return minimumSeconds > 0 ? Math.max(ttlSeconds, initialAgeSeconds + minimumSeconds) : ttlSeconds;
}

const NO_ERROR_OVERRIDES: ReadonlyMap<number, number> = new Map();

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

import type { CacheBehavior, DefaultCacheBehavior } from "@aws-sdk/client-cloudfront";
import type { TtlSettings } from "./freshness.js";
import { compileWildcard } from "./wildcard.js";

/** Published ids of the managed cache policies that Portico knows. */
export const CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6";
export const CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/** CloudFront's defaults for a cache behavior that leaves the TTLs unset. */
const DEFAULT_TTLS: TtlSettings = { minTtlSeconds: 0, defaultTtlSeconds: 86_400, maxTtlSeconds: 31_536_000 };

export type QueryStringKeyPolicy =
  | { mode: "none" }
  | { mode: "all" }
  | { mode: "whitelist"; names: ReadonlySet<string> };

export type CookieKeyPolicy =
  | { mode: "none" }
  | { mode: "all" }
  | { mode: "whitelist"; patterns: readonly RegExp[] };

/**
 * What goes into the cache key of a behavior. Only these values are
 * forwarded to the origin, so a response never depends on a request value
 * that the key leaves out.
 */
export interface CacheKeyPolicy {
  queryStrings: QueryStringKeyPolicy;
  cookies: CookieKeyPolicy;
  /** Whitelisted viewer header names, lower-case and sorted. */
  headers: readonly string[];
  /** True when the header whitelist is `*`: every header goes to the origin and nothing is cached. */
  allHeaders: boolean;
}

export interface BehaviorCachePolicy {
  key: CacheKeyPolicy;
  ttl: TtlSettings;
  /** True when no response of this behavior can be stored, so requests bypass the cache. */
  bypass: boolean;
}

/**
 * Resolves a behavior's cache settings: the managed cache policy named by
 * `CachePolicyId`, or else the legacy `ForwardedValues` with the behavior's
 * own TTLs.
 */
export function resolveCachePolicy(behavior: CacheBehavior | DefaultCacheBehavior): BehaviorCachePolicy {
  const noValuesInKey: CacheKeyPolicy = {
    queryStrings: { mode: "none" },
    cookies: { mode: "none" },
    headers: [],
    allHeaders: false,
  };
  if (behavior.CachePolicyId === CACHING_DISABLED_POLICY_ID) {
    return { key: noValuesInKey, ttl: { minTtlSeconds: 0, defaultTtlSeconds: 0, maxTtlSeconds: 0 }, bypass: true };
  }
  if (behavior.CachePolicyId !== undefined && behavior.CachePolicyId !== "") {
    // NOTE: custom cache policies are not stored by the edge yet, so any other
    // id is served with the CachingOptimized settings.
    return {
      key: noValuesInKey,
      ttl: { minTtlSeconds: 1, defaultTtlSeconds: 86_400, maxTtlSeconds: 31_536_000 },
      bypass: false,
    };
  }

  const forwarded = behavior.ForwardedValues;
  const ttl: TtlSettings = {
    minTtlSeconds: behavior.MinTTL ?? DEFAULT_TTLS.minTtlSeconds,
    defaultTtlSeconds: behavior.DefaultTTL ?? DEFAULT_TTLS.defaultTtlSeconds,
    maxTtlSeconds: behavior.MaxTTL ?? DEFAULT_TTLS.maxTtlSeconds,
  };

  let queryStrings: QueryStringKeyPolicy = { mode: "none" };
  if (forwarded?.QueryString === true) {
    const names = forwarded.QueryStringCacheKeys?.Items ?? [];
    queryStrings = names.length > 0 ? { mode: "whitelist", names: new Set(names) } : { mode: "all" };
  }

  let cookies: CookieKeyPolicy = { mode: "none" };
  if (forwarded?.Cookies?.Forward === "all") cookies = { mode: "all" };
  else if (forwarded?.Cookies?.Forward === "whitelist") {
    cookies = { mode: "whitelist", patterns: (forwarded.Cookies.WhitelistedNames?.Items ?? []).map(compileWildcard) };
  }

  const headerItems = forwarded?.Headers?.Items ?? [];
  const allHeaders = headerItems.includes("*");
  const headers = allHeaders ? [] : [...new Set(headerItems.map((name) => name.toLowerCase()))].sort();

  // CloudFront caches nothing when every header is forwarded, since each
  // viewer's headers would make a key of their own.
  return { key: { queryStrings, cookies, headers, allHeaders }, ttl, bypass: allHeaders };
}

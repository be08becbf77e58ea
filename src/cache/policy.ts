import type {
  CacheBehavior,
  CachePolicyConfig,
  DefaultCacheBehavior,
  OriginRequestPolicyConfig,
} from "@aws-sdk/client-cloudfront";
import type { DistributionSnapshot } from "../cluster/types.js";
import type { TtlSettings } from "./freshness.js";
import {
  CACHING_DISABLED_POLICY_ID,
  MANAGED_CACHE_POLICIES,
  MANAGED_ORIGIN_REQUEST_POLICIES,
} from "./managed-policies.js";
import { compileWildcard } from "./wildcard.js";

export { CACHING_DISABLED_POLICY_ID, CACHING_OPTIMIZED_POLICY_ID } from "./managed-policies.js";

/** CloudFront's defaults for a cache behavior that leaves the TTLs unset. */
const DEFAULT_TTLS: TtlSettings = { minTtlSeconds: 0, defaultTtlSeconds: 86_400, maxTtlSeconds: 31_536_000 };

export type QueryStringKeyPolicy =
  | { mode: "none" }
  | { mode: "all" }
  | { mode: "whitelist"; names: ReadonlySet<string> }
  | { mode: "allExcept"; names: ReadonlySet<string> };

export type CookieKeyPolicy =
  | { mode: "none" }
  | { mode: "all" }
  | { mode: "whitelist"; patterns: readonly RegExp[] }
  | { mode: "allExcept"; patterns: readonly RegExp[] };

/** The encodings a normalized `Accept-Encoding` may name in the key (cache policy or legacy Compress). */
export interface AcceptEncodingKeyPolicy {
  gzip: boolean;
  br: boolean;
}

/**
 * The values in the cache key of a behavior. These values are forwarded to
 * the origin. Anything else reaches it only through the origin request
 * policy, so a response depends on a value outside the key only when the
 * operator chose that.
 */
export interface CacheKeyPolicy {
  queryStrings: QueryStringKeyPolicy;
  cookies: CookieKeyPolicy;
  /** Whitelisted viewer header names, lower-case and sorted. */
  headers: readonly string[];
  /** True when the header whitelist is `*`: every header goes to the origin and nothing is cached. */
  allHeaders: boolean;
  acceptEncoding: AcceptEncodingKeyPolicy;
}

export type HeaderForwardPolicy =
  | { mode: "none" }
  | { mode: "whitelist"; names: ReadonlySet<string> }
  | { mode: "allViewer" }
  | { mode: "allExcept"; names: ReadonlySet<string> };

/** Values an origin request policy forwards beyond the cache key; they never enter the key. */
export interface ForwardPolicy {
  queryStrings: QueryStringKeyPolicy;
  cookies: CookieKeyPolicy;
  headers: HeaderForwardPolicy;
}

export interface BehaviorCachePolicy {
  key: CacheKeyPolicy;
  forward: ForwardPolicy;
  ttl: TtlSettings;
  /** True when no response of this behavior can be stored, so requests bypass the cache. */
  bypass: boolean;
}

const NOTHING_FORWARDED: ForwardPolicy = {
  queryStrings: { mode: "none" },
  cookies: { mode: "none" },
  headers: { mode: "none" },
};

function namesOf(list: { Items?: string[] | undefined } | undefined): string[] {
  return list?.Items ?? [];
}

function queryPolicyOf(behavior: string | undefined, names: string[]): QueryStringKeyPolicy {
  switch (behavior) {
    case "all":
      return { mode: "all" };
    case "whitelist":
      return { mode: "whitelist", names: new Set(names) };
    case "allExcept":
      return { mode: "allExcept", names: new Set(names) };
    default:
      return { mode: "none" };
  }
}

function cookiePolicyOf(behavior: string | undefined, names: string[]): CookieKeyPolicy {
  switch (behavior) {
    case "all":
      return { mode: "all" };
    case "whitelist":
      return { mode: "whitelist", patterns: names.map(compileWildcard) };
    case "allExcept":
      return { mode: "allExcept", patterns: names.map(compileWildcard) };
    default:
      return { mode: "none" };
  }
}

function lowerSorted(names: string[]): string[] {
  return [...new Set(names.map((name) => name.toLowerCase()))].sort();
}

/** Compiles a cache policy config (CachePolicyConfig) into the key and TTLs. */
export function compileCachePolicy(config: CachePolicyConfig): { key: CacheKeyPolicy; ttl: TtlSettings } {
  const parameters = config.ParametersInCacheKeyAndForwardedToOrigin;
  const headers =
    parameters?.HeadersConfig?.HeaderBehavior === "whitelist" ? lowerSorted(namesOf(parameters.HeadersConfig.Headers)) : [];
  return {
    key: {
      queryStrings: queryPolicyOf(
        parameters?.QueryStringsConfig?.QueryStringBehavior,
        namesOf(parameters?.QueryStringsConfig?.QueryStrings),
      ),
      cookies: cookiePolicyOf(parameters?.CookiesConfig?.CookieBehavior, namesOf(parameters?.CookiesConfig?.Cookies)),
      headers,
      allHeaders: false,
      acceptEncoding: {
        gzip: parameters?.EnableAcceptEncodingGzip === true,
        br: parameters?.EnableAcceptEncodingBrotli === true,
      },
    },
    ttl: {
      minTtlSeconds: config.MinTTL ?? DEFAULT_TTLS.minTtlSeconds,
      defaultTtlSeconds: config.DefaultTTL ?? DEFAULT_TTLS.defaultTtlSeconds,
      maxTtlSeconds: config.MaxTTL ?? DEFAULT_TTLS.maxTtlSeconds,
    },
  };
}

/** Compiles an origin request policy config into what it forwards beyond the key. */
export function compileOriginRequestPolicy(config: OriginRequestPolicyConfig): ForwardPolicy {
  const headerNames = new Set(lowerSorted(namesOf(config.HeadersConfig?.Headers)));
  let headers: HeaderForwardPolicy;
  switch (config.HeadersConfig?.HeaderBehavior) {
    case "whitelist":
      headers = { mode: "whitelist", names: headerNames };
      break;
    case "allViewer":
      headers = { mode: "allViewer" };
      break;
    case "allViewerAndWhitelistCloudFront":
      // NOTE: the edge generates no CloudFront-Viewer-* headers, so the
      // whitelisted CloudFront headers are absent from the origin request.
      headers = { mode: "allViewer" };
      break;
    case "allExcept":
      headers = { mode: "allExcept", names: headerNames };
      break;
    default:
      headers = { mode: "none" };
  }
  return {
    queryStrings: queryPolicyOf(
      config.QueryStringsConfig?.QueryStringBehavior,
      namesOf(config.QueryStringsConfig?.QueryStrings),
    ),
    cookies: cookiePolicyOf(config.CookiesConfig?.CookieBehavior, namesOf(config.CookiesConfig?.Cookies)),
    headers,
  };
}

/** Returns a named policy from the snapshot, else the AWS-managed one under that id. */
function lookupPolicy<T>(
  id: string,
  carried: Record<string, T> | undefined,
  managed: Readonly<Record<string, T>>,
): T | undefined {
  return carried?.[id] ?? managed[id];
}

/**
 * Resolves a behavior's cache settings. With `CachePolicyId`, they come from
 * that cache policy (from the snapshot, or a managed one) and the origin
 * request policy named by `OriginRequestPolicyId`. Otherwise they come from
 * the legacy `ForwardedValues` and the behavior's own TTLs, and the key and
 * the forwarded values are the same.
 */
export function resolveCachePolicy(
  behavior: CacheBehavior | DefaultCacheBehavior,
  snapshot: Pick<DistributionSnapshot, "cachePolicies" | "originRequestPolicies"> = {},
): BehaviorCachePolicy {
  const cachePolicyId = behavior.CachePolicyId ?? "";
  if (cachePolicyId !== "") {
    const config = lookupPolicy(cachePolicyId, snapshot.cachePolicies, MANAGED_CACHE_POLICIES);
    // An unknown id cannot come from a validated config; CachingDisabled is the safe reading.
    const { key, ttl } = compileCachePolicy(config ?? MANAGED_CACHE_POLICIES[CACHING_DISABLED_POLICY_ID]!);
    const originRequestPolicyId = behavior.OriginRequestPolicyId ?? "";
    const originRequestConfig =
      originRequestPolicyId === ""
        ? undefined
        : lookupPolicy(originRequestPolicyId, snapshot.originRequestPolicies, MANAGED_ORIGIN_REQUEST_POLICIES);
    const forward = originRequestConfig === undefined ? NOTHING_FORWARDED : compileOriginRequestPolicy(originRequestConfig);
    // CloudFront caches nothing when MaxTTL is 0 (CachingDisabled).
    return { key, forward, ttl, bypass: config === undefined || ttl.maxTtlSeconds === 0 };
  }

  const forwarded = behavior.ForwardedValues;
  const ttl: TtlSettings = {
    minTtlSeconds: behavior.MinTTL ?? DEFAULT_TTLS.minTtlSeconds,
    defaultTtlSeconds: behavior.DefaultTTL ?? DEFAULT_TTLS.defaultTtlSeconds,
    maxTtlSeconds: behavior.MaxTTL ?? DEFAULT_TTLS.maxTtlSeconds,
  };

  let queryStrings: QueryStringKeyPolicy = { mode: "none" };
  if (forwarded?.QueryString === true) {
    const names = namesOf(forwarded.QueryStringCacheKeys);
    queryStrings = names.length > 0 ? { mode: "whitelist", names: new Set(names) } : { mode: "all" };
  }

  let cookies: CookieKeyPolicy = { mode: "none" };
  if (forwarded?.Cookies?.Forward === "all") cookies = { mode: "all" };
  else if (forwarded?.Cookies?.Forward === "whitelist") {
    cookies = cookiePolicyOf("whitelist", namesOf(forwarded.Cookies.WhitelistedNames));
  }

  const headerItems = namesOf(forwarded?.Headers);
  const allHeaders = headerItems.includes("*");
  const headers = allHeaders ? [] : lowerSorted(headerItems);
  // With legacy settings and Compress on, CloudFront keys on a normalized
  // Accept-Encoding so that compressed and uncompressed copies are apart.
  // Brotli needs a cache policy; legacy settings compress with gzip alone.
  const compress = behavior.Compress === true;
  const acceptEncoding = { gzip: compress, br: false };

  // CloudFront caches nothing when every header is forwarded, since each
  // viewer's headers would make a key of their own.
  return {
    key: { queryStrings, cookies, headers, allHeaders, acceptEncoding },
    forward: NOTHING_FORWARDED,
    ttl,
    bypass: allHeaders,
  };
}

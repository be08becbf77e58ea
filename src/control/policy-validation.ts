import type {
  CachePolicyConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
} from "@aws-sdk/client-cloudfront";
import { cloudFrontError, controlErrors } from "./errors.js";
import { checkHeaderValue } from "./header-value.js";
import { checkQuantities } from "./validation.js";

const invalid = controlErrors.invalidArgument;

/**
 * CloudFront quotas on policies (Amazon CloudFront Developer Guide, "Quotas
 * on policies"): names in a cache key or origin request, and custom headers
 * of a response headers policy.
 */
export const MAX_POLICY_NAMES = 10;
export const MAX_RESPONSE_CUSTOM_HEADERS = 10;
const MAX_POLICY_NAME_LENGTH = 128;
const MAX_POLICY_COMMENT_LENGTH = 128;
const POLICY_NAME = /^[A-Za-z0-9_-]+$/;
const MAX_TTL_SECONDS = 31_536_000 * 100;

function checkName(name: string | undefined, path: string): void {
  if (!name) throw invalid(`${path}.Name is required.`);
  if (name.length > MAX_POLICY_NAME_LENGTH || !POLICY_NAME.test(name)) {
    throw invalid(`${path}.Name '${name}' must be 1 to ${MAX_POLICY_NAME_LENGTH} letters, digits, '-' or '_'.`);
  }
}

function checkComment(comment: string | undefined, path: string): void {
  if ((comment ?? "").length > MAX_POLICY_COMMENT_LENGTH) {
    throw invalid(`${path}.Comment is longer than ${MAX_POLICY_COMMENT_LENGTH} characters.`);
  }
}

/** Checks one of a policy's header, cookie or query string settings. */
function checkNamedValues(
  behavior: string | undefined,
  items: string[] | undefined,
  allowed: readonly string[],
  listedBehaviors: readonly string[],
  path: string,
  tooManyCode: string,
): void {
  if (!behavior || !allowed.includes(behavior)) {
    throw invalid(`${path} '${behavior ?? ""}' is not valid; use ${allowed.join(", ")}.`);
  }
  const names = items ?? [];
  if (listedBehaviors.includes(behavior) && names.length === 0) {
    throw invalid(`${path} '${behavior}' needs at least one name in its list.`);
  }
  if (!listedBehaviors.includes(behavior) && names.length > 0 && behavior !== "allViewerAndWhitelistCloudFront") {
    throw invalid(`${path} '${behavior}' takes no list of names; remove the Items.`);
  }
  if (names.length > MAX_POLICY_NAMES) {
    throw cloudFrontError(tooManyCode, `${path} lists ${names.length} names; the maximum is ${MAX_POLICY_NAMES}.`);
  }
}

/** Validates a cache policy (CloudFront API reference, CachePolicyConfig). Fills the TTL defaults in place. */
export function validateCachePolicyConfig(config: CachePolicyConfig): CachePolicyConfig {
  const path = "CachePolicyConfig";
  checkQuantities(config, path);
  checkName(config.Name, path);
  checkComment(config.Comment, path);
  if (config.MinTTL === undefined) throw invalid(`${path}.MinTTL is required.`);
  // CloudFront's defaults: DefaultTTL one day (or MinTTL when larger), MaxTTL one year (or DefaultTTL when larger).
  const minTtl = config.MinTTL;
  const defaultTtl = config.DefaultTTL ?? Math.max(86_400, minTtl);
  const maxTtl = config.MaxTTL ?? Math.max(31_536_000, defaultTtl);
  for (const [name, ttl] of [["MinTTL", minTtl], ["DefaultTTL", defaultTtl], ["MaxTTL", maxTtl]] as const) {
    if (ttl < 0 || ttl > MAX_TTL_SECONDS) throw invalid(`${path}.${name} must be 0 to ${MAX_TTL_SECONDS} seconds, not ${ttl}.`);
  }
  if (minTtl > defaultTtl || defaultTtl > maxTtl) {
    throw cloudFrontError("InvalidTTLOrder", `${path} must have MinTTL <= DefaultTTL <= MaxTTL; got ${minTtl}, ${defaultTtl}, ${maxTtl}.`);
  }
  const parameters = config.ParametersInCacheKeyAndForwardedToOrigin;
  if (!parameters) throw invalid(`${path}.ParametersInCacheKeyAndForwardedToOrigin is required.`);
  const where = `${path}.ParametersInCacheKeyAndForwardedToOrigin`;
  checkNamedValues(
    parameters.HeadersConfig?.HeaderBehavior,
    parameters.HeadersConfig?.Headers?.Items,
    ["none", "whitelist"],
    ["whitelist"],
    `${where}.HeadersConfig.HeaderBehavior`,
    "TooManyHeadersInCachePolicy",
  );
  checkNamedValues(
    parameters.CookiesConfig?.CookieBehavior,
    parameters.CookiesConfig?.Cookies?.Items,
    ["none", "whitelist", "allExcept", "all"],
    ["whitelist", "allExcept"],
    `${where}.CookiesConfig.CookieBehavior`,
    "TooManyCookiesInCachePolicy",
  );
  checkNamedValues(
    parameters.QueryStringsConfig?.QueryStringBehavior,
    parameters.QueryStringsConfig?.QueryStrings?.Items,
    ["none", "whitelist", "allExcept", "all"],
    ["whitelist", "allExcept"],
    `${where}.QueryStringsConfig.QueryStringBehavior`,
    "TooManyQueryStringsInCachePolicy",
  );
  // With caching disabled (MaxTTL 0) nothing is cached, so CloudFront
  // rejects cache key settings that could only affect cached objects.
  const keyed =
    parameters.HeadersConfig?.HeaderBehavior !== "none" ||
    parameters.CookiesConfig?.CookieBehavior !== "none" ||
    parameters.QueryStringsConfig?.QueryStringBehavior !== "none" ||
    parameters.EnableAcceptEncodingGzip === true ||
    parameters.EnableAcceptEncodingBrotli === true;
  if (maxTtl === 0 && keyed) {
    throw invalid(`${where} must include no headers, cookies, query strings or encodings when MaxTTL is 0 (caching disabled).`);
  }
  return { ...config, DefaultTTL: defaultTtl, MaxTTL: maxTtl, Comment: config.Comment ?? "" };
}

/** Validates an origin request policy (CloudFront API reference, OriginRequestPolicyConfig). */
export function validateOriginRequestPolicyConfig(config: OriginRequestPolicyConfig): OriginRequestPolicyConfig {
  const path = "OriginRequestPolicyConfig";
  checkQuantities(config, path);
  checkName(config.Name, path);
  checkComment(config.Comment, path);
  checkNamedValues(
    config.HeadersConfig?.HeaderBehavior,
    config.HeadersConfig?.Headers?.Items,
    ["none", "whitelist", "allViewer", "allViewerAndWhitelistCloudFront", "allExcept"],
    ["whitelist", "allExcept"],
    `${path}.HeadersConfig.HeaderBehavior`,
    "TooManyHeadersInOriginRequestPolicy",
  );
  checkNamedValues(
    config.CookiesConfig?.CookieBehavior,
    config.CookiesConfig?.Cookies?.Items,
    ["none", "whitelist", "all", "allExcept"],
    ["whitelist", "allExcept"],
    `${path}.CookiesConfig.CookieBehavior`,
    "TooManyCookiesInOriginRequestPolicy",
  );
  checkNamedValues(
    config.QueryStringsConfig?.QueryStringBehavior,
    config.QueryStringsConfig?.QueryStrings?.Items,
    ["none", "whitelist", "all", "allExcept"],
    ["whitelist", "allExcept"],
    `${path}.QueryStringsConfig.QueryStringBehavior`,
    "TooManyQueryStringsInOriginRequestPolicy",
  );
  return { ...config, Comment: config.Comment ?? "" };
}

const CORS_METHODS = new Set(["GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "HEAD", "ALL"]);
const FRAME_OPTIONS = new Set(["DENY", "SAMEORIGIN"]);
const REFERRER_POLICIES = new Set([
  "no-referrer",
  "no-referrer-when-downgrade",
  "origin",
  "origin-when-cross-origin",
  "same-origin",
  "strict-origin",
  "strict-origin-when-cross-origin",
  "unsafe-url",
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Validates a response headers policy (CloudFront API reference, ResponseHeadersPolicyConfig). */
export function validateResponseHeadersPolicyConfig(config: ResponseHeadersPolicyConfig): ResponseHeadersPolicyConfig {
  const path = "ResponseHeadersPolicyConfig";
  checkQuantities(config, path);
  checkName(config.Name, path);
  checkComment(config.Comment, path);
  const cors = config.CorsConfig;
  if (cors) {
    for (const method of cors.AccessControlAllowMethods?.Items ?? []) {
      if (!CORS_METHODS.has(method)) {
        throw invalid(`${path}.CorsConfig.AccessControlAllowMethods: '${method}' is not a valid method.`);
      }
    }
    if ((cors.AccessControlAllowOrigins?.Items ?? []).length === 0) {
      throw invalid(`${path}.CorsConfig.AccessControlAllowOrigins must list at least one origin.`);
    }
    if (cors.AccessControlMaxAgeSec !== undefined && cors.AccessControlMaxAgeSec < 0) {
      throw invalid(`${path}.CorsConfig.AccessControlMaxAgeSec must be 0 or more seconds.`);
    }
    if (cors.AccessControlAllowCredentials && (cors.AccessControlAllowOrigins?.Items ?? []).includes("*")) {
      throw invalid(`${path}.CorsConfig allows credentials with the origin '*', which browsers reject; list the origins.`);
    }
    for (const list of ["AccessControlAllowOrigins", "AccessControlAllowHeaders", "AccessControlExposeHeaders"] as const) {
      for (const item of cors[list]?.Items ?? []) checkHeaderValue(item, `${path}.CorsConfig.${list}`);
    }
  }
  const security = config.SecurityHeadersConfig;
  if (security?.FrameOptions && !FRAME_OPTIONS.has(security.FrameOptions.FrameOption ?? "")) {
    throw invalid(`${path}.SecurityHeadersConfig.FrameOptions.FrameOption must be DENY or SAMEORIGIN.`);
  }
  if (security?.ReferrerPolicy && !REFERRER_POLICIES.has(security.ReferrerPolicy.ReferrerPolicy ?? "")) {
    throw invalid(`${path}.SecurityHeadersConfig.ReferrerPolicy.ReferrerPolicy '${security.ReferrerPolicy.ReferrerPolicy ?? ""}' is not valid.`);
  }
  checkHeaderValue(security?.ContentSecurityPolicy?.ContentSecurityPolicy, `${path}.SecurityHeadersConfig.ContentSecurityPolicy`);
  checkHeaderValue(security?.XSSProtection?.ReportUri, `${path}.SecurityHeadersConfig.XSSProtection.ReportUri`);
  if (security?.StrictTransportSecurity && (security.StrictTransportSecurity.AccessControlMaxAgeSec ?? -1) < 0) {
    throw invalid(`${path}.SecurityHeadersConfig.StrictTransportSecurity.AccessControlMaxAgeSec must be 0 or more seconds.`);
  }
  const customHeaders = config.CustomHeadersConfig?.Items ?? [];
  if (customHeaders.length > MAX_RESPONSE_CUSTOM_HEADERS) {
    throw cloudFrontError(
      "TooManyCustomHeadersInResponseHeadersPolicy",
      `${path}.CustomHeadersConfig lists ${customHeaders.length} headers; the maximum is ${MAX_RESPONSE_CUSTOM_HEADERS}.`,
    );
  }
  for (const header of customHeaders) checkHeaderValue(header.Value ?? "", `${path}.CustomHeadersConfig header '${header.Header ?? ""}' value`);
  const seen = new Set<string>();
  for (const header of [...customHeaders, ...(config.RemoveHeadersConfig?.Items ?? [])]) {
    const name = header.Header ?? "";
    if (!HEADER_NAME.test(name)) throw invalid(`${path}: '${name}' is not a valid header name.`);
    if (seen.has(name.toLowerCase())) throw invalid(`${path} names the header '${name}' more than once.`);
    seen.add(name.toLowerCase());
  }
  const sampling = config.ServerTimingHeadersConfig?.SamplingRate;
  if (sampling !== undefined && (sampling < 0 || sampling > 100)) {
    throw invalid(`${path}.ServerTimingHeadersConfig.SamplingRate must be 0 to 100, not ${sampling}.`);
  }
  return { ...config, Comment: config.Comment ?? "" };
}

import type { ResponseHeadersPolicyConfig } from "@aws-sdk/client-cloudfront";
import { MANAGED_RESPONSE_HEADERS_POLICIES } from "../cache/managed-policies.js";
import type { DistributionSnapshot } from "../cluster/types.js";

/**
 * Response headers policies as the CloudFront Developer Guide describes
 * them in "Understand response headers policies". Headers a policy adds
 * replace the origin's only where the policy sets Override. Removed
 * headers never reach the viewer. CORS headers are added only to requests
 * that carry an `Origin` header.
 */

interface AddedHeader {
  name: string;
  value: string;
  override: boolean;
}

interface CorsSettings {
  allowOrigins: readonly string[];
  allowAnyOrigin: boolean;
  allowHeaders: string;
  allowMethods: string;
  exposeHeaders: string;
  allowCredentials: boolean;
  maxAgeSeconds: number | undefined;
  originOverride: boolean;
}

/** A response headers policy compiled for the response path. */
export interface CompiledHeadersPolicy {
  /** Changes whenever the policy changes, so entries built under another policy are rebuilt. */
  tag: string;
  added: readonly AddedHeader[];
  removed: ReadonlySet<string>;
  cors: CorsSettings | undefined;
}

function itemsOf<T>(list: { Items?: T[] | undefined } | undefined): T[] {
  return list?.Items ?? [];
}

/** Compiles a ResponseHeadersPolicyConfig; `id` only feeds the tag. */
export function compileHeadersPolicy(id: string, config: ResponseHeadersPolicyConfig): CompiledHeadersPolicy {
  const added: AddedHeader[] = [];
  const security = config.SecurityHeadersConfig;
  const hsts = security?.StrictTransportSecurity;
  if (hsts !== undefined) {
    let value = `max-age=${hsts.AccessControlMaxAgeSec ?? 0}`;
    if (hsts.IncludeSubdomains === true) value += "; includeSubDomains";
    if (hsts.Preload === true) value += "; preload";
    added.push({ name: "strict-transport-security", value, override: hsts.Override === true });
  }
  if (security?.ContentTypeOptions !== undefined) {
    added.push({ name: "x-content-type-options", value: "nosniff", override: security.ContentTypeOptions.Override === true });
  }
  if (security?.FrameOptions?.FrameOption !== undefined) {
    added.push({ name: "x-frame-options", value: security.FrameOptions.FrameOption, override: security.FrameOptions.Override === true });
  }
  if (security?.ReferrerPolicy?.ReferrerPolicy !== undefined) {
    added.push({ name: "referrer-policy", value: security.ReferrerPolicy.ReferrerPolicy, override: security.ReferrerPolicy.Override === true });
  }
  if (security?.ContentSecurityPolicy?.ContentSecurityPolicy !== undefined) {
    added.push({
      name: "content-security-policy",
      value: security.ContentSecurityPolicy.ContentSecurityPolicy,
      override: security.ContentSecurityPolicy.Override === true,
    });
  }
  const xss = security?.XSSProtection;
  if (xss !== undefined) {
    let value = xss.Protection === true ? "1" : "0";
    if (xss.Protection === true && xss.ModeBlock === true) value += "; mode=block";
    else if (xss.Protection === true && xss.ReportUri !== undefined) value += `; report=${xss.ReportUri}`;
    added.push({ name: "x-xss-protection", value, override: xss.Override === true });
  }
  for (const header of itemsOf(config.CustomHeadersConfig)) {
    if (header.Header === undefined || header.Value === undefined) continue;
    added.push({ name: header.Header.toLowerCase(), value: header.Value, override: header.Override === true });
  }

  const removed = new Set(itemsOf(config.RemoveHeadersConfig).map((item) => (item.Header ?? "").toLowerCase()));
  const corsConfig = config.CorsConfig;
  let cors: CorsSettings | undefined;
  if (corsConfig !== undefined) {
    const origins = itemsOf(corsConfig.AccessControlAllowOrigins);
    cors = {
      allowOrigins: origins,
      allowAnyOrigin: origins.includes("*"),
      allowHeaders: itemsOf(corsConfig.AccessControlAllowHeaders).join(", "),
      allowMethods: itemsOf(corsConfig.AccessControlAllowMethods)
        .map((method) => (method === "ALL" ? "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT" : method))
        .join(", "),
      exposeHeaders: itemsOf(corsConfig.AccessControlExposeHeaders).join(", "),
      allowCredentials: corsConfig.AccessControlAllowCredentials === true,
      maxAgeSeconds: corsConfig.AccessControlMaxAgeSec,
      originOverride: corsConfig.OriginOverride === true,
    };
  }
  return { tag: `${id}:${JSON.stringify(config)}`, added, removed, cors };
}

/** Resolves the policy a behavior names, from the snapshot or the managed set. */
export function resolveHeadersPolicy(
  id: string | undefined,
  snapshot: Pick<DistributionSnapshot, "responseHeadersPolicies">,
): CompiledHeadersPolicy | undefined {
  if (id === undefined || id === "") return undefined;
  const config = snapshot.responseHeadersPolicies?.[id] ?? MANAGED_RESPONSE_HEADERS_POLICIES[id];
  return config === undefined ? undefined : compileHeadersPolicy(id, config);
}

function hasHeader(headers: readonly string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return true;
  return false;
}

function withoutNames(headers: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.has(headers[i]!)) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/**
 * Applies the parts of a policy that do not depend on the request: removed,
 * security and custom headers. The result can be stored with a cache entry.
 */
export function applyStaticHeaders(headers: readonly string[], policy: CompiledHeadersPolicy | undefined): string[] {
  if (policy === undefined) return headers.slice();
  let out = policy.removed.size === 0 ? headers.slice() : withoutNames(headers, policy.removed);
  const overridden = new Set(policy.added.filter((header) => header.override).map((header) => header.name));
  if (overridden.size > 0) out = withoutNames(out, overridden);
  for (const header of policy.added) {
    if (header.override || !hasHeader(out, header.name)) out.push(header.name, header.value);
  }
  return out;
}

/** The request values CORS depends on. */
export interface CorsRequest {
  method: string;
  origin: string | undefined;
  /** Set for a preflight: OPTIONS with Access-Control-Request-Method. */
  requestMethod: string | undefined;
}

/**
 * Appends CORS headers for a request with an `Origin` (Fetch standard, CORS
 * protocol). Without OriginOverride, a response whose origin already sent
 * Access-Control-Allow-Origin keeps the origin's CORS headers.
 */
export function appendCorsHeaders(headers: string[], policy: CompiledHeadersPolicy | undefined, request: CorsRequest): string[] {
  const cors = policy?.cors;
  if (cors === undefined || request.origin === undefined) return headers;
  const allowed = cors.allowAnyOrigin || cors.allowOrigins.includes(request.origin);
  if (!allowed) return headers;

  const names = ["access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"];
  if (hasHeader(headers, "access-control-allow-origin")) {
    if (!cors.originOverride) return headers;
    headers = withoutNames(headers, new Set([...names, "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age"]));
  }
  // A credentialed response must name the origin, never `*`.
  const allowOrigin = cors.allowAnyOrigin && !cors.allowCredentials ? "*" : request.origin;
  headers.push("access-control-allow-origin", allowOrigin);
  if (allowOrigin !== "*" && !hasHeader(headers, "vary")) headers.push("vary", "Origin");
  if (cors.allowCredentials) headers.push("access-control-allow-credentials", "true");
  if (cors.exposeHeaders !== "") headers.push("access-control-expose-headers", cors.exposeHeaders);
  const isPreflight = request.method === "OPTIONS" && request.requestMethod !== undefined;
  if (isPreflight) {
    if (cors.allowMethods !== "") headers.push("access-control-allow-methods", cors.allowMethods);
    if (cors.allowHeaders !== "") headers.push("access-control-allow-headers", cors.allowHeaders);
    if (cors.maxAgeSeconds !== undefined) headers.push("access-control-max-age", String(cors.maxAgeSeconds));
  }
  return headers;
}

/** Applies a whole policy to a response built per request. */
export function applyHeadersPolicy(
  headers: readonly string[],
  policy: CompiledHeadersPolicy | undefined,
  request: CorsRequest,
): string[] {
  if (policy === undefined) return headers.slice();
  return appendCorsHeaders(applyStaticHeaders(headers, policy), policy, request);
}

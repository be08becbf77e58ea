import type {
  CachePolicyConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyAccessControlAllowMethodsValues,
  ResponseHeadersPolicyConfig,
} from "@aws-sdk/client-cloudfront";

/**
 * AWS-managed policies under their published ids, so distribution configs
 * copied from real accounts resolve. Settings follow the Amazon CloudFront
 * Developer Guide pages "Use managed cache policies", "Use managed origin
 * request policies" and "Use managed response headers policies".
 */

const list = (items: string[]) => ({ Quantity: items.length, Items: items });

function cachePolicy(
  name: string,
  comment: string,
  ttls: { min: number; default: number; max: number },
  key: {
    headers?: string[];
    cookies?: "none" | "all";
    queryStrings?: "none" | "all" | string[];
    compressed: boolean;
  },
): CachePolicyConfig {
  const queryStrings = key.queryStrings ?? "none";
  return {
    Name: name,
    Comment: comment,
    MinTTL: ttls.min,
    DefaultTTL: ttls.default,
    MaxTTL: ttls.max,
    ParametersInCacheKeyAndForwardedToOrigin: {
      EnableAcceptEncodingGzip: key.compressed,
      EnableAcceptEncodingBrotli: key.compressed,
      HeadersConfig: key.headers
        ? { HeaderBehavior: "whitelist", Headers: list(key.headers) }
        : { HeaderBehavior: "none" },
      CookiesConfig: { CookieBehavior: key.cookies ?? "none" },
      QueryStringsConfig: Array.isArray(queryStrings)
        ? { QueryStringBehavior: "whitelist", QueryStrings: list(queryStrings) }
        : { QueryStringBehavior: queryStrings },
    },
  };
}

const YEAR_SECONDS = 31_536_000;
const DAY_SECONDS = 86_400;
const ORIGIN_CACHE_CONTROL_HEADERS = ["Host", "Origin", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"];

export const MANAGED_CACHE_POLICIES: Readonly<Record<string, CachePolicyConfig>> = {
  "2e54312d-136d-493c-8eb9-b001f22f67d2": cachePolicy(
    "Amplify",
    "Policy for Amplify Origin",
    { min: 2, default: 2, max: 600 },
    { headers: ["Authorization", "CloudFront-Viewer-Country", "Host"], cookies: "all", queryStrings: "all", compressed: true },
  ),
  "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": cachePolicy(
    "Managed-CachingDisabled",
    "Policy with caching disabled",
    { min: 0, default: 0, max: 0 },
    { compressed: false },
  ),
  "658327ea-f89d-4fab-a63d-7e88639e58f6": cachePolicy(
    "Managed-CachingOptimized",
    "Policy with caching enabled. Supports Gzip and Brotli compression.",
    { min: 1, default: DAY_SECONDS, max: YEAR_SECONDS },
    { compressed: true },
  ),
  "b2884449-e4de-46a7-ac36-70bc7f1ddd6d": cachePolicy(
    "Managed-CachingOptimizedForUncompressedObjects",
    "Default policy when compression is disabled",
    { min: 1, default: DAY_SECONDS, max: YEAR_SECONDS },
    { compressed: false },
  ),
  "08627262-05a9-4f76-9ded-b50ca2e3a84f": cachePolicy(
    "Managed-Elemental-MediaPackage",
    "Policy for Elemental MediaPackage Origin",
    { min: 0, default: DAY_SECONDS, max: YEAR_SECONDS },
    { headers: ["Origin"], queryStrings: ["aws.manifestfilter", "end", "m", "start"], compressed: true },
  ),
  "83da9c7e-98b4-4e11-a168-04f0df8e2c65": cachePolicy(
    "UseOriginCacheControlHeaders",
    "Policy for origins that return Cache-Control headers. Query strings are not included in the cache key.",
    { min: 0, default: 0, max: YEAR_SECONDS },
    { headers: ORIGIN_CACHE_CONTROL_HEADERS, cookies: "all", compressed: true },
  ),
  "4cc15a8a-d715-48a4-82b8-cc0b614638fe": cachePolicy(
    "UseOriginCacheControlHeaders-QueryStrings",
    "Policy for origins that return Cache-Control headers and serve different content based on values present in the query string.",
    { min: 0, default: 0, max: YEAR_SECONDS },
    { headers: ORIGIN_CACHE_CONTROL_HEADERS, cookies: "all", queryStrings: "all", compressed: true },
  ),
};

function originRequestPolicy(
  name: string,
  comment: string,
  headers: OriginRequestPolicyConfig["HeadersConfig"],
  cookies: "none" | "all",
  queryStrings: "none" | "all",
): OriginRequestPolicyConfig {
  return {
    Name: name,
    Comment: comment,
    HeadersConfig: headers,
    CookiesConfig: { CookieBehavior: cookies },
    QueryStringsConfig: { QueryStringBehavior: queryStrings },
  };
}

/** The CloudFront headers released through June 2022, which AllViewerAndCloudFrontHeaders-2022-06 adds. */
const CLOUDFRONT_HEADERS_2022_06 = [
  "CloudFront-Forwarded-Proto",
  "CloudFront-Is-Android-Viewer",
  "CloudFront-Is-Desktop-Viewer",
  "CloudFront-Is-IOS-Viewer",
  "CloudFront-Is-Mobile-Viewer",
  "CloudFront-Is-SmartTV-Viewer",
  "CloudFront-Is-Tablet-Viewer",
  "CloudFront-Viewer-Address",
  "CloudFront-Viewer-ASN",
  "CloudFront-Viewer-City",
  "CloudFront-Viewer-Country",
  "CloudFront-Viewer-Country-Name",
  "CloudFront-Viewer-Country-Region",
  "CloudFront-Viewer-Country-Region-Name",
  "CloudFront-Viewer-Http-Version",
  "CloudFront-Viewer-Latitude",
  "CloudFront-Viewer-Longitude",
  "CloudFront-Viewer-Metro-Code",
  "CloudFront-Viewer-Postal-Code",
  "CloudFront-Viewer-Time-Zone",
  "CloudFront-Viewer-TLS",
];

const CORS_S3_HEADERS = ["Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method"];

export const MANAGED_ORIGIN_REQUEST_POLICIES: Readonly<Record<string, OriginRequestPolicyConfig>> = {
  "216adef6-5c7f-47e4-b989-5492eafa07d3": originRequestPolicy(
    "Managed-AllViewer",
    "Policy to forward all parameters in viewer requests",
    { HeaderBehavior: "allViewer" },
    "all",
    "all",
  ),
  "33f36d7e-f396-46d9-90e0-52428a34d9dc": originRequestPolicy(
    "Managed-AllViewerAndCloudFrontHeaders-2022-06",
    "Policy to forward all parameters in viewer requests and all CloudFront headers released through June 2022",
    { HeaderBehavior: "allViewerAndWhitelistCloudFront", Headers: list(CLOUDFRONT_HEADERS_2022_06) },
    "all",
    "all",
  ),
  "b689b0a8-53d0-40ab-baf2-68738e2966ac": originRequestPolicy(
    "Managed-AllViewerExceptHostHeader",
    "Policy to forward all parameters in viewer requests except for the Host header",
    { HeaderBehavior: "allExcept", Headers: list(["Host"]) },
    "all",
    "all",
  ),
  "59781a5b-3903-41f3-afcb-af62929ccde1": originRequestPolicy(
    "Managed-CORS-CustomOrigin",
    "Policy for Custom Origin with CORS",
    { HeaderBehavior: "whitelist", Headers: list(["Origin"]) },
    "none",
    "none",
  ),
  "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf": originRequestPolicy(
    "Managed-CORS-S3Origin",
    "Policy for S3 origin with CORS",
    { HeaderBehavior: "whitelist", Headers: list(CORS_S3_HEADERS) },
    "none",
    "none",
  ),
  "775133bc-15f2-49f9-abea-afb2e0bf67d2": originRequestPolicy(
    "Managed-Elemental-MediaTailor-PersonalizedManifests",
    "Policy for Elemental MediaTailor Origin",
    { HeaderBehavior: "whitelist", Headers: list([...CORS_S3_HEADERS, "User-Agent", "X-Forwarded-For"]) },
    "none",
    "all",
  ),
  "bf0718e1-ba1e-49d1-88b1-f726733018ae": originRequestPolicy(
    "Managed-HostHeaderOnly",
    "Policy to forward only the Host header",
    { HeaderBehavior: "whitelist", Headers: list(["Host"]) },
    "none",
    "none",
  ),
  "acba4595-bd28-49b8-b9fe-13317c0390fa": originRequestPolicy(
    "Managed-UserAgentRefererHeaders",
    "Policy for forwarding User-Agent and Referer headers",
    { HeaderBehavior: "whitelist", Headers: list(["User-Agent", "Referer"]) },
    "none",
    "none",
  ),
};

const ALL_METHODS: ResponseHeadersPolicyAccessControlAllowMethodsValues[] = [
  "GET",
  "DELETE",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
];

/** CORS for any origin. Origin values win over the policy's (OriginOverride false). */
function corsConfig(preflight: boolean): NonNullable<ResponseHeadersPolicyConfig["CorsConfig"]> {
  return {
    AccessControlAllowOrigins: list(["*"]),
    AccessControlAllowHeaders: list(["*"]),
    AccessControlAllowMethods: preflight
      ? { Quantity: ALL_METHODS.length, Items: ALL_METHODS }
      : { Quantity: 3, Items: ["GET", "HEAD", "OPTIONS"] },
    AccessControlAllowCredentials: false,
    AccessControlExposeHeaders: list(["*"]),
    OriginOverride: false,
  };
}

/**
 * The security headers of SecurityHeadersPolicy: X-Content-Type-Options
 * replaces the origin's value; the others keep the origin's value when it
 * sends one.
 */
const SECURITY_HEADERS: NonNullable<ResponseHeadersPolicyConfig["SecurityHeadersConfig"]> = {
  ContentTypeOptions: { Override: true },
  FrameOptions: { FrameOption: "SAMEORIGIN", Override: false },
  ReferrerPolicy: { ReferrerPolicy: "strict-origin-when-cross-origin", Override: false },
  StrictTransportSecurity: { AccessControlMaxAgeSec: YEAR_SECONDS, IncludeSubdomains: false, Preload: false, Override: false },
  XSSProtection: { Protection: true, ModeBlock: true, Override: false },
};

// NOTE: the guide lists the headers and values that these policies send. It
// does not publish every member that GetResponseHeadersPolicy returns (such
// as the allowed methods of SimpleCORS), so those members are reconstructed.
export const MANAGED_RESPONSE_HEADERS_POLICIES: Readonly<Record<string, ResponseHeadersPolicyConfig>> = {
  "e61eb60c-9c35-4d20-a928-2b84e02af89c": {
    Name: "Managed-CORS-and-SecurityHeadersPolicy",
    Comment: "Allows all origins for simple CORS requests, including security headers",
    CorsConfig: corsConfig(false),
    SecurityHeadersConfig: SECURITY_HEADERS,
  },
  "5cc3b908-e619-4b99-88e5-2cf7f45965bd": {
    Name: "Managed-CORS-With-Preflight",
    Comment: "Allows all origins for CORS requests, including preflight requests",
    CorsConfig: corsConfig(true),
  },
  "eaab4381-ed33-4a86-88ca-d9558dc6cd63": {
    Name: "Managed-CORS-with-preflight-and-SecurityHeadersPolicy",
    Comment: "Allows all origins for CORS requests, including preflight requests and security headers",
    CorsConfig: corsConfig(true),
    SecurityHeadersConfig: SECURITY_HEADERS,
  },
  "67f7725c-6f97-4210-82d7-5512b31e9d03": {
    Name: "Managed-SecurityHeadersPolicy",
    Comment: "Adds a set of security headers to every response",
    SecurityHeadersConfig: SECURITY_HEADERS,
  },
  "60669652-455b-4ae9-85a4-c4c02393f86c": {
    Name: "Managed-SimpleCORS",
    Comment: "Allows all origins for simple CORS requests",
    CorsConfig: corsConfig(false),
  },
};

import type {
  CachePolicyConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
  ResponseHeadersPolicySecurityHeadersConfig,
} from "@aws-sdk/client-cloudfront";

/**
 * AWS-managed policies under their published ids, as the CloudFront
 * Developer Guide lists them ("Use managed cache policies", "Use managed
 * origin request policies", "Use managed response headers policies"). The
 * edge falls back to these when a snapshot names a managed id without
 * carrying its config.
 */

export const CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6";
export const CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
export const CACHING_OPTIMIZED_UNCOMPRESSED_POLICY_ID = "b2884449-e4de-46a7-ac36-70bc7f1ddd6d";
export const USE_ORIGIN_CACHE_CONTROL_POLICY_ID = "83da9c7e-98b4-4e11-a168-04f0df8e2c65";
export const USE_ORIGIN_CACHE_CONTROL_QUERY_POLICY_ID = "4cc15a8a-d715-48a4-82b8-cc0b614638fe";

type KeyParameters = NonNullable<CachePolicyConfig["ParametersInCacheKeyAndForwardedToOrigin"]>;

function cachePolicy(
  name: string,
  ttls: [min: number, defaultTtl: number, max: number],
  parameters: Partial<KeyParameters>,
): CachePolicyConfig {
  return {
    Name: name,
    Comment: `Managed policy ${name}`,
    MinTTL: ttls[0],
    DefaultTTL: ttls[1],
    MaxTTL: ttls[2],
    ParametersInCacheKeyAndForwardedToOrigin: {
      EnableAcceptEncodingGzip: false,
      EnableAcceptEncodingBrotli: false,
      HeadersConfig: { HeaderBehavior: "none" },
      CookiesConfig: { CookieBehavior: "none" },
      QueryStringsConfig: { QueryStringBehavior: "none" },
      ...parameters,
    },
  };
}

const ORIGIN_CACHE_CONTROL_HEADERS = ["host", "origin", "x-http-method-override", "x-http-method", "x-method-override"];

export const MANAGED_CACHE_POLICIES: Readonly<Record<string, CachePolicyConfig>> = {
  [CACHING_OPTIMIZED_POLICY_ID]: cachePolicy("Managed-CachingOptimized", [1, 86_400, 31_536_000], {
    EnableAcceptEncodingGzip: true,
    EnableAcceptEncodingBrotli: true,
  }),
  [CACHING_OPTIMIZED_UNCOMPRESSED_POLICY_ID]: cachePolicy(
    "Managed-CachingOptimizedForUncompressedObjects",
    [1, 86_400, 31_536_000],
    {},
  ),
  [CACHING_DISABLED_POLICY_ID]: cachePolicy("Managed-CachingDisabled", [0, 0, 0], {}),
  [USE_ORIGIN_CACHE_CONTROL_POLICY_ID]: cachePolicy("UseOriginCacheControlHeaders", [0, 0, 31_536_000], {
    EnableAcceptEncodingGzip: true,
    EnableAcceptEncodingBrotli: true,
    HeadersConfig: {
      HeaderBehavior: "whitelist",
      Headers: { Quantity: ORIGIN_CACHE_CONTROL_HEADERS.length, Items: ORIGIN_CACHE_CONTROL_HEADERS },
    },
    CookiesConfig: { CookieBehavior: "all" },
  }),
  [USE_ORIGIN_CACHE_CONTROL_QUERY_POLICY_ID]: cachePolicy(
    "UseOriginCacheControlHeaders-QueryStrings",
    [0, 0, 31_536_000],
    {
      EnableAcceptEncodingGzip: true,
      EnableAcceptEncodingBrotli: true,
      HeadersConfig: {
        HeaderBehavior: "whitelist",
        Headers: { Quantity: ORIGIN_CACHE_CONTROL_HEADERS.length, Items: ORIGIN_CACHE_CONTROL_HEADERS },
      },
      CookiesConfig: { CookieBehavior: "all" },
      QueryStringsConfig: { QueryStringBehavior: "all" },
    },
  ),
};

function originRequestPolicy(
  name: string,
  headers: OriginRequestPolicyConfig["HeadersConfig"],
  cookies: "none" | "all",
  queryStrings: "none" | "all",
): OriginRequestPolicyConfig {
  return {
    Name: name,
    Comment: `Managed policy ${name}`,
    HeadersConfig: headers,
    CookiesConfig: { CookieBehavior: cookies },
    QueryStringsConfig: { QueryStringBehavior: queryStrings },
  };
}

function headerList(names: string[]): { Quantity: number; Items: string[] } {
  return { Quantity: names.length, Items: names };
}

export const MANAGED_ORIGIN_REQUEST_POLICIES: Readonly<Record<string, OriginRequestPolicyConfig>> = {
  "216adef6-5c7f-47e4-b989-5492eafa07d3": originRequestPolicy("Managed-AllViewer", { HeaderBehavior: "allViewer" }, "all", "all"),
  "b689b0a8-53d0-40ab-baf2-68738e2966ac": originRequestPolicy(
    "Managed-AllViewerExceptHostHeader",
    { HeaderBehavior: "allExcept", Headers: headerList(["host"]) },
    "all",
    "all",
  ),
  "33f36d7e-f396-46d9-90e0-52428a34d9dc": originRequestPolicy(
    "Managed-AllViewerAndCloudFrontHeaders-2022-06",
    { HeaderBehavior: "allViewerAndWhitelistCloudFront" },
    "all",
    "all",
  ),
  "59781a5b-3903-41f3-afcb-af62929ccde1": originRequestPolicy(
    "Managed-CORS-CustomOrigin",
    { HeaderBehavior: "whitelist", Headers: headerList(["origin"]) },
    "none",
    "none",
  ),
  "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf": originRequestPolicy(
    "Managed-CORS-S3Origin",
    {
      HeaderBehavior: "whitelist",
      Headers: headerList(["origin", "access-control-request-headers", "access-control-request-method"]),
    },
    "none",
    "none",
  ),
  "acba4595-bd28-49b6-b9ef-a0c0fd2a9e3b": originRequestPolicy(
    "Managed-UserAgentRefererHeaders",
    { HeaderBehavior: "whitelist", Headers: headerList(["user-agent", "referer"]) },
    "none",
    "none",
  ),
};

const SECURITY_HEADERS: ResponseHeadersPolicySecurityHeadersConfig = {
  StrictTransportSecurity: { Override: false, AccessControlMaxAgeSec: 31_536_000 },
  ContentTypeOptions: { Override: false },
  FrameOptions: { Override: false, FrameOption: "SAMEORIGIN" },
  XSSProtection: { Override: false, Protection: true, ModeBlock: true },
  ReferrerPolicy: { Override: false, ReferrerPolicy: "strict-origin-when-cross-origin" },
};

const SIMPLE_CORS = {
  AccessControlAllowOrigins: { Quantity: 1, Items: ["*"] },
  AccessControlAllowHeaders: { Quantity: 0, Items: [] },
  AccessControlAllowMethods: { Quantity: 0, Items: [] },
  AccessControlAllowCredentials: false,
  OriginOverride: false,
};

const PREFLIGHT_CORS = {
  ...SIMPLE_CORS,
  AccessControlAllowHeaders: { Quantity: 1, Items: ["*"] },
  AccessControlAllowMethods: {
    Quantity: 7,
    Items: ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"] as Array<
      "DELETE" | "GET" | "HEAD" | "OPTIONS" | "PATCH" | "POST" | "PUT" | "ALL"
    >,
  },
  AccessControlExposeHeaders: { Quantity: 1, Items: ["*"] },
};

export const MANAGED_RESPONSE_HEADERS_POLICIES: Readonly<Record<string, ResponseHeadersPolicyConfig>> = {
  "60669652-455b-4ae9-85a4-c4c02393f86c": { Name: "Managed-SimpleCORS", CorsConfig: SIMPLE_CORS },
  "5cc3b908-e619-4b99-88e5-2cf7f45965bd": { Name: "Managed-CORS-With-Preflight", CorsConfig: PREFLIGHT_CORS },
  "67f7725c-6f97-4210-82d7-5512b31e9d03": { Name: "Managed-SecurityHeadersPolicy", SecurityHeadersConfig: SECURITY_HEADERS },
  "e61eb60c-9c35-4d20-a928-2b84e02af89c": {
    Name: "Managed-CORS-and-SecurityHeadersPolicy",
    CorsConfig: SIMPLE_CORS,
    SecurityHeadersConfig: SECURITY_HEADERS,
  },
  "eaab4381-ed33-4a86-88ca-d9558dc6cd63": {
    Name: "Managed-CORS-with-preflight-and-SecurityHeadersPolicy",
    CorsConfig: PREFLIGHT_CORS,
    SecurityHeadersConfig: SECURITY_HEADERS,
  },
};

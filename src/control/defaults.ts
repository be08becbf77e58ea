import type {
  CacheBehavior,
  DefaultCacheBehavior,
  DistributionConfig,
  Origin,
} from "@aws-sdk/client-cloudfront";

/** CloudFront's legacy cache settings defaults, in seconds (one day and one year). */
export const DEFAULT_TTL_SECONDS = 86_400;
export const DEFAULT_MAX_TTL_SECONDS = 31_536_000;

const GET_HEAD = { Quantity: 2, Items: ["HEAD", "GET"] } as const;

function withOriginDefaults(origin: Origin): Origin {
  return {
    ...origin,
    OriginPath: origin.OriginPath ?? "",
    CustomHeaders: origin.CustomHeaders ?? { Quantity: 0 },
    ConnectionAttempts: origin.ConnectionAttempts ?? 3,
    ConnectionTimeout: origin.ConnectionTimeout ?? 10,
    OriginAccessControlId: origin.OriginAccessControlId ?? "",
  };
}

function withBehaviorDefaults<T extends CacheBehavior | DefaultCacheBehavior>(behavior: T): T {
  const filled: T = {
    ...behavior,
    TrustedSigners: behavior.TrustedSigners ?? { Enabled: false, Quantity: 0 },
    TrustedKeyGroups: behavior.TrustedKeyGroups ?? { Enabled: false, Quantity: 0 },
    AllowedMethods: behavior.AllowedMethods ?? { ...GET_HEAD, Items: [...GET_HEAD.Items], CachedMethods: { ...GET_HEAD, Items: [...GET_HEAD.Items] } },
    SmoothStreaming: behavior.SmoothStreaming ?? false,
    Compress: behavior.Compress ?? false,
    LambdaFunctionAssociations: behavior.LambdaFunctionAssociations ?? { Quantity: 0 },
    FunctionAssociations: behavior.FunctionAssociations ?? { Quantity: 0 },
    FieldLevelEncryptionId: behavior.FieldLevelEncryptionId ?? "",
  };
  // Without a cache policy, CloudFront applies the legacy TTL settings and
  // fills DefaultTTL and MaxTTL when the request leaves them out.
  if (!behavior.CachePolicyId) {
    filled.DefaultTTL = behavior.DefaultTTL ?? DEFAULT_TTL_SECONDS;
    filled.MaxTTL = behavior.MaxTTL ?? DEFAULT_MAX_TTL_SECONDS;
  }
  return filled;
}

/**
 * Fills the optional parts of a distribution config with the values
 * CloudFront reports for them when a request leaves them out, so that edges,
 * GetDistributionConfig and CallerReference comparisons all see one form.
 */
export function withDistributionDefaults(config: DistributionConfig): DistributionConfig {
  return {
    ...config,
    Aliases: config.Aliases ?? { Quantity: 0 },
    DefaultRootObject: config.DefaultRootObject ?? "",
    Origins: config.Origins && {
      ...config.Origins,
      Items: config.Origins.Items?.map(withOriginDefaults),
    },
    OriginGroups: config.OriginGroups ?? { Quantity: 0 },
    DefaultCacheBehavior: config.DefaultCacheBehavior && withBehaviorDefaults(config.DefaultCacheBehavior),
    CacheBehaviors: config.CacheBehaviors
      ? { ...config.CacheBehaviors, Items: config.CacheBehaviors.Items?.map(withBehaviorDefaults) }
      : { Quantity: 0 },
    CustomErrorResponses: config.CustomErrorResponses ?? { Quantity: 0 },
    Logging: config.Logging ?? { Enabled: false, IncludeCookies: false, Bucket: "", Prefix: "" },
    PriceClass: config.PriceClass ?? "PriceClass_All",
    ViewerCertificate: config.ViewerCertificate ?? {
      CloudFrontDefaultCertificate: true,
      SSLSupportMethod: "vip",
      MinimumProtocolVersion: "TLSv1",
      CertificateSource: "cloudfront",
    },
    Restrictions: config.Restrictions ?? { GeoRestriction: { RestrictionType: "none", Quantity: 0 } },
    WebACLId: config.WebACLId ?? "",
    HttpVersion: config.HttpVersion ?? "http2",
    IsIPV6Enabled: config.IsIPV6Enabled ?? true,
    Staging: config.Staging ?? false,
  };
}

/** JSON with object keys sorted, so equal configs compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) return item;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(item).sort()) {
      const member = (item as Record<string, unknown>)[key];
      if (member !== undefined) sorted[key] = member;
    }
    return sorted;
  });
}

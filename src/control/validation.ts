import type {
  CacheBehavior,
  DefaultCacheBehavior,
  DistributionConfig,
  LoggingConfig,
  OriginAccessControlConfig,
} from "@aws-sdk/client-cloudfront";
import { cloudFrontError, controlErrors } from "./errors.js";
import { checkCustomErrorResponses, checkOriginGroupSettings, checkOriginSettings } from "./origin-validation.js";
import type { PolicyKind } from "./store.js";

/** CloudFront quotas (Amazon CloudFront Developer Guide, "Quotas on distributions"). */
export const MAX_ORIGINS_PER_DISTRIBUTION = 100;
export const MAX_CACHE_BEHAVIORS_PER_DISTRIBUTION = 75;
export const MAX_ALIASES_PER_DISTRIBUTION = 100;
const MAX_COMMENT_LENGTH = 128;

/**
 * An S3 origin domain: `<bucket>.s3.amazonaws.com` or
 * `<bucket>.s3.<region>.amazonaws.com`, with a DNS-compatible bucket name.
 */
export const S3_ORIGIN_DOMAIN = /^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.s3(?:\.([a-z0-9-]+))?\.amazonaws\.com$/;

const VIEWER_PROTOCOL_POLICIES = new Set(["allow-all", "https-only", "redirect-to-https"]);
const HOSTNAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lookups into the rest of the stored state that validation needs. */
export interface ValidationContext {
  originAccessControlExists(id: string): boolean;
  /** Whether a managed or stored policy of `kind` has this id. */
  policyExists(kind: PolicyKind, id: string): boolean;
  /** The id of the distribution that already uses `alias`, if any. */
  aliasOwner(alias: string): string | undefined;
  /** The distribution being updated, whose own aliases do not conflict. */
  distributionId: string | undefined;
  /** The Logging settings stored for the distribution being updated, if any. */
  storedLogging: LoggingConfig | undefined;
  /** Whether the bucket store has a bucket of this name. */
  bucketExists(name: string): boolean;
}

const invalid = controlErrors.invalidArgument;

/**
 * Checks that every `Quantity` equals the length of its sibling `Items`,
 * anywhere in the document (CloudFront's InconsistentQuantities).
 */
export function checkQuantities(value: unknown, path: string): void {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkQuantities(item, `${path}[${index}]`));
    return;
  }
  const record = value as Record<string, unknown>;
  if (typeof record.Quantity === "number") {
    const items = record.Items;
    const itemCount = Array.isArray(items) ? items.length : 0;
    if (record.Quantity !== itemCount) {
      throw cloudFrontError(
        "InconsistentQuantities",
        `${path}.Quantity is ${record.Quantity} but ${path}.Items has ${itemCount} items.`,
      );
    }
  }
  for (const [key, member] of Object.entries(record)) checkQuantities(member, `${path}.${key}`);
}

const POLICY_REFERENCES = [
  { field: "CachePolicyId", kind: "cache", missingCode: "NoSuchCachePolicy" },
  { field: "OriginRequestPolicyId", kind: "origin-request", missingCode: "NoSuchOriginRequestPolicy" },
  { field: "ResponseHeadersPolicyId", kind: "response-headers", missingCode: "NoSuchResponseHeadersPolicy" },
] as const;

function checkPolicyReferences(
  behavior: CacheBehavior | DefaultCacheBehavior,
  path: string,
  context: ValidationContext,
): void {
  for (const reference of POLICY_REFERENCES) {
    const id = behavior[reference.field];
    if (!id) continue;
    if (!context.policyExists(reference.kind, id)) {
      throw cloudFrontError(reference.missingCode, `${path}.${reference.field} '${id}' names no policy of that kind.`);
    }
  }
  // A cache policy replaces the legacy cache settings (CloudFront API
  // reference, CacheBehavior: ForwardedValues is for behaviors without one).
  if (behavior.CachePolicyId && behavior.ForwardedValues) {
    throw invalid(`${path}.ForwardedValues cannot be used when a cache policy is associated to the cache behavior.`);
  }
}

function checkBehavior(
  behavior: CacheBehavior | DefaultCacheBehavior,
  path: string,
  targetIds: Set<string>,
  context: ValidationContext,
): void {
  checkPolicyReferences(behavior, path, context);
  if (!behavior.TargetOriginId) throw invalid(`${path}.TargetOriginId is required.`);
  if (!targetIds.has(behavior.TargetOriginId)) {
    throw cloudFrontError(
      "NoSuchOrigin",
      `${path}.TargetOriginId '${behavior.TargetOriginId}' names no origin or origin group of this distribution.`,
    );
  }
  if (!VIEWER_PROTOCOL_POLICIES.has(behavior.ViewerProtocolPolicy ?? "")) {
    throw invalid(
      `${path}.ViewerProtocolPolicy '${behavior.ViewerProtocolPolicy ?? ""}' is not valid; use allow-all, https-only or redirect-to-https.`,
    );
  }

  // Without a cache policy the behavior uses the legacy settings, where
  // ForwardedValues and MinTTL are required (CloudFront API reference,
  // DefaultCacheBehavior).
  if (!behavior.CachePolicyId) {
    if (!behavior.ForwardedValues) throw invalid(`${path}.ForwardedValues is required when CachePolicyId is not set.`);
    if (behavior.MinTTL === undefined) throw invalid(`${path}.MinTTL is required when CachePolicyId is not set.`);
  }
  const ttls = [behavior.MinTTL, behavior.DefaultTTL, behavior.MaxTTL];
  if (ttls.some((ttl) => ttl !== undefined && ttl < 0)) {
    throw invalid(`${path} has a negative TTL; MinTTL, DefaultTTL and MaxTTL are seconds, 0 or more.`);
  }
  const [minTtl = 0, defaultTtl = minTtl, maxTtl = Number.MAX_SAFE_INTEGER] = ttls;
  if (minTtl > defaultTtl || defaultTtl > maxTtl) {
    throw cloudFrontError(
      "InvalidTTLOrder",
      `${path} must have MinTTL <= DefaultTTL <= MaxTTL; got ${minTtl}, ${defaultTtl}, ${maxTtl}.`,
    );
  }
}

/**
 * Validates a distribution config the way CloudFront does before storing it.
 * Each error names the field at fault.
 */
export function validateDistributionConfig(config: DistributionConfig, context: ValidationContext): void {
  checkQuantities(config, "DistributionConfig");
  if (!config.CallerReference) throw invalid("DistributionConfig.CallerReference is required.");
  if (config.Comment === undefined) throw invalid("DistributionConfig.Comment is required.");
  if (config.Comment.length > MAX_COMMENT_LENGTH) {
    throw invalid(`DistributionConfig.Comment is longer than ${MAX_COMMENT_LENGTH} characters.`);
  }
  if (typeof config.Enabled !== "boolean") throw invalid("DistributionConfig.Enabled is required.");
  if (config.DefaultRootObject?.startsWith("/")) {
    throw cloudFrontError(
      "InvalidDefaultRootObject",
      `DistributionConfig.DefaultRootObject '${config.DefaultRootObject}' must not start with '/'.`,
    );
  }

  const origins = config.Origins?.Items ?? [];
  if (origins.length === 0) throw invalid("DistributionConfig.Origins must contain at least one Origin.");
  if (origins.length > MAX_ORIGINS_PER_DISTRIBUTION) {
    throw cloudFrontError(
      "TooManyOrigins",
      `DistributionConfig.Origins has ${origins.length} origins; the maximum is ${MAX_ORIGINS_PER_DISTRIBUTION}.`,
    );
  }
  const targetIds = new Set<string>();
  origins.forEach((origin, index) => {
    const path = `DistributionConfig.Origins.Items[${index}]`;
    if (!origin.Id) throw invalid(`${path}.Id is required.`);
    if (targetIds.has(origin.Id)) throw invalid(`${path}.Id '${origin.Id}' is used by another origin.`);
    targetIds.add(origin.Id);
    if (!origin.DomainName) throw invalid(`${path}.DomainName is required.`);
    if (origin.OriginPath && (!origin.OriginPath.startsWith("/") || origin.OriginPath.endsWith("/"))) {
      throw invalid(`${path}.OriginPath '${origin.OriginPath}' must start with '/' and must not end with '/'.`);
    }
    if ((origin.S3OriginConfig === undefined) === (origin.CustomOriginConfig === undefined)) {
      throw cloudFrontError("InvalidOrigin", `${path} must have exactly one of S3OriginConfig and CustomOriginConfig.`);
    }
    if (origin.S3OriginConfig && !S3_ORIGIN_DOMAIN.test(origin.DomainName)) {
      throw cloudFrontError(
        "InvalidOrigin",
        `${path}.DomainName '${origin.DomainName}' is not an S3 bucket domain; use <bucket>.s3.amazonaws.com or <bucket>.s3.<region>.amazonaws.com.`,
      );
    }
    checkOriginSettings(origin, path);
    if (origin.OriginAccessControlId) {
      if (!context.originAccessControlExists(origin.OriginAccessControlId)) {
        throw controlErrors.noSuchOriginAccessControl(origin.OriginAccessControlId);
      }
      if (origin.S3OriginConfig?.OriginAccessIdentity) {
        throw cloudFrontError(
          "IllegalOriginAccessConfiguration",
          `${path} sets both OriginAccessControlId and S3OriginConfig.OriginAccessIdentity; use one.`,
        );
      }
    }
  });
  for (const [index, group] of (config.OriginGroups?.Items ?? []).entries()) {
    if (targetIds.has(group.Id ?? "")) throw invalid(`Origin group Id '${group.Id}' is also an origin Id.`);
    checkOriginGroupSettings(group, `DistributionConfig.OriginGroups.Items[${index}]`);
    for (const member of group.Members?.Items ?? []) {
      if (!targetIds.has(member.OriginId ?? "")) {
        throw cloudFrontError("NoSuchOrigin", `Origin group '${group.Id}' names unknown origin '${member.OriginId}'.`);
      }
    }
    if (group.Id) targetIds.add(group.Id);
  }

  checkCustomErrorResponses(config.CustomErrorResponses?.Items ?? []);
  checkLogging(config.Logging, context);

  if (!config.DefaultCacheBehavior) throw invalid("DistributionConfig.DefaultCacheBehavior is required.");
  checkBehavior(config.DefaultCacheBehavior, "DistributionConfig.DefaultCacheBehavior", targetIds, context);
  const behaviors = config.CacheBehaviors?.Items ?? [];
  if (behaviors.length > MAX_CACHE_BEHAVIORS_PER_DISTRIBUTION) {
    throw cloudFrontError(
      "TooManyCacheBehaviors",
      `DistributionConfig.CacheBehaviors has ${behaviors.length} behaviors; the maximum is ${MAX_CACHE_BEHAVIORS_PER_DISTRIBUTION}.`,
    );
  }
  const pathPatterns = new Set<string>();
  behaviors.forEach((behavior, index) => {
    const path = `DistributionConfig.CacheBehaviors.Items[${index}]`;
    if (!behavior.PathPattern) throw invalid(`${path}.PathPattern is required.`);
    if (pathPatterns.has(behavior.PathPattern)) {
      throw invalid(`${path}.PathPattern '${behavior.PathPattern}' is used by another cache behavior.`);
    }
    pathPatterns.add(behavior.PathPattern);
    checkBehavior(behavior, path, targetIds, context);
  });

  const aliases = config.Aliases?.Items ?? [];
  if (aliases.length > MAX_ALIASES_PER_DISTRIBUTION) {
    throw cloudFrontError(
      "TooManyDistributionCNAMEs",
      `DistributionConfig.Aliases has ${aliases.length} names; the maximum is ${MAX_ALIASES_PER_DISTRIBUTION}.`,
    );
  }
  const seenAliases = new Set<string>();
  for (const alias of aliases) {
    const name = alias.toLowerCase();
    if (!HOSTNAME.test(name)) throw cloudFrontError("InvalidArgument", `DistributionConfig.Aliases: '${alias}' is not a valid domain name.`);
    if (seenAliases.has(name)) throw invalid(`DistributionConfig.Aliases lists '${alias}' more than once.`);
    seenAliases.add(name);
    const owner = context.aliasOwner(name);
    if (owner !== undefined && owner !== context.distributionId) {
      throw cloudFrontError(
        "CNAMEAlreadyExists",
        `One or more of the CNAMEs you provided are already associated with a different resource: '${alias}' belongs to ${owner}.`,
      );
    }
  }
}

/**
 * Checks that Logging.Bucket, when logging is enabled, is an S3 bucket domain
 * that names a bucket of the store, as CloudFront checks that the log bucket
 * exists (InvalidArgument otherwise). An update that keeps the stored bucket
 * is not checked again, so a distribution stored before this check, or whose
 * bucket was deleted since, can still be updated, for example to disable it.
 */
function checkLogging(logging: LoggingConfig | undefined, context: ValidationContext): void {
  if (logging?.Enabled !== true) return;
  const domain = logging.Bucket ?? "";
  const stored = context.storedLogging;
  if (stored?.Enabled === true && stored.Bucket === domain) return;
  const bucket = S3_ORIGIN_DOMAIN.exec(domain)?.[1];
  if (bucket === undefined) {
    throw invalid(
      `DistributionConfig.Logging.Bucket '${domain}' is not an S3 bucket domain; use <bucket>.s3.amazonaws.com or <bucket>.s3.<region>.amazonaws.com.`,
    );
  }
  if (!context.bucketExists(bucket)) {
    throw invalid(
      `The S3 bucket that you specified for CloudFront logs doesn't exist or is not accessible: '${bucket}' (Logging.Bucket '${domain}'). Create the bucket first.`,
    );
  }
}

const SIGNING_BEHAVIORS = new Set(["never", "always", "no-override"]);
const ORIGIN_TYPES = new Set(["s3", "mediastore", "mediapackagev2", "lambda"]);

/** Validates an origin access control config (CloudFront API reference, OriginAccessControlConfig). */
export function validateOriginAccessControlConfig(config: OriginAccessControlConfig): void {
  if (!config.Name) throw invalid("OriginAccessControlConfig.Name is required.");
  if (config.Name.length > 64) throw invalid("OriginAccessControlConfig.Name is longer than 64 characters.");
  if ((config.Description ?? "").length > 256) {
    throw invalid("OriginAccessControlConfig.Description is longer than 256 characters.");
  }
  if (config.SigningProtocol !== "sigv4") {
    throw invalid(`OriginAccessControlConfig.SigningProtocol '${config.SigningProtocol ?? ""}' is not valid; use sigv4.`);
  }
  if (!SIGNING_BEHAVIORS.has(config.SigningBehavior ?? "")) {
    throw invalid(
      `OriginAccessControlConfig.SigningBehavior '${config.SigningBehavior ?? ""}' is not valid; use never, always or no-override.`,
    );
  }
  if (!ORIGIN_TYPES.has(config.OriginAccessControlOriginType ?? "")) {
    throw invalid(
      `OriginAccessControlConfig.OriginAccessControlOriginType '${config.OriginAccessControlOriginType ?? ""}' is not valid; use s3, mediastore, mediapackagev2 or lambda.`,
    );
  }
}

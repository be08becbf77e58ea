import type { CacheBehavior, DefaultCacheBehavior } from "@aws-sdk/client-cloudfront";
import { resolveCachePolicy, type BehaviorCachePolicy } from "../cache/policy.js";
import { compileWildcard } from "../cache/wildcard.js";
import type { DistributionSnapshot } from "../cluster/types.js";
import { createOrigin, OriginGroup, type Origin, type OriginContext } from "../origin/index.js";
import { compileCustomErrors, type CustomErrorRule } from "./custom-errors.js";
import { resolveHeadersPolicy, type CompiledHeadersPolicy } from "./response-headers.js";

export type ViewerProtocolPolicy = "allow-all" | "redirect-to-https" | "https-only";

export interface RoutedBehavior {
  /** The behavior's PathPattern, or `*` for the default behavior. */
  pathPattern: string;
  matcher: RegExp | undefined;
  /** Undefined when TargetOriginId names no origin of the distribution. */
  origin: Origin | undefined;
  targetOriginId: string;
  viewerProtocolPolicy: ViewerProtocolPolicy;
  allowedMethods: ReadonlySet<string>;
  cache: BehaviorCachePolicy;
  /** The response headers policy the behavior names, applied to every response it serves. */
  headersPolicy: CompiledHeadersPolicy | undefined;
  /** The behavior's Compress flag: gzip or Brotli for compressible types. */
  compress: boolean;
}

/** A distribution compiled for request routing; replaced whole on every update. */
export interface RoutedDistribution {
  id: string;
  arn: string;
  version: number;
  domainName: string;
  /** DomainName and Aliases, lower-case. */
  hostNames: readonly string[];
  enabled: boolean;
  /** DefaultRootObject without a leading slash, or empty. */
  defaultRootObject: string;
  behaviors: readonly RoutedBehavior[];
  defaultBehavior: RoutedBehavior;
  /** CustomErrorResponses by status code. */
  customErrors: ReadonlyMap<number, CustomErrorRule>;
  /** ErrorCachingMinTTL by status code, for freshness. */
  errorCachingMinTtlSeconds: ReadonlyMap<number, number>;
  /** Logging.Enabled: the access log needs each request's record. */
  logsRequests: boolean;
}

/**
 * Compiles a CloudFront path pattern. A pattern without a leading `/` is
 * matched as if it had one, as CloudFront treats `images/*` and `/images/*`
 * alike.
 */
export function compilePathPattern(pattern: string): RegExp {
  const anchored = pattern.startsWith("/") || pattern.startsWith("*") ? pattern : `/${pattern}`;
  return compileWildcard(anchored);
}

function routeBehavior(
  behavior: CacheBehavior | DefaultCacheBehavior,
  pathPattern: string | undefined,
  origins: ReadonlyMap<string, Origin>,
  snapshot: DistributionSnapshot,
): RoutedBehavior {
  const targetOriginId = behavior.TargetOriginId ?? "";
  return {
    pathPattern: pathPattern ?? "*",
    matcher: pathPattern === undefined ? undefined : compilePathPattern(pathPattern),
    origin: origins.get(targetOriginId),
    targetOriginId,
    viewerProtocolPolicy: (behavior.ViewerProtocolPolicy ?? "allow-all") as ViewerProtocolPolicy,
    allowedMethods: new Set(behavior.AllowedMethods?.Items ?? ["GET", "HEAD"]),
    cache: resolveCachePolicy(behavior, snapshot),
    headersPolicy: resolveHeadersPolicy(behavior.ResponseHeadersPolicyId, snapshot),
    compress: behavior.Compress === true,
  };
}

/** Compiles a deployed snapshot: origins, behaviors in order, and host names. */
export function compileDistribution(
  snapshot: DistributionSnapshot,
  context: OriginContext,
  onFailover: ConstructorParameters<typeof OriginGroup>[4] = () => {},
): RoutedDistribution {
  const config = snapshot.config;
  const origins = new Map<string, Origin>();
  for (const originConfig of config.Origins?.Items ?? []) {
    const origin = createOrigin(originConfig, snapshot, context);
    origins.set(origin.id, origin);
  }
  for (const group of config.OriginGroups?.Items ?? []) {
    const [primaryId, secondaryId] = (group.Members?.Items ?? []).map((member) => member.OriginId ?? "");
    const primary = origins.get(primaryId ?? "");
    const secondary = origins.get(secondaryId ?? "");
    if (group.Id === undefined || primary === undefined || secondary === undefined) continue;
    const statuses = new Set(group.FailoverCriteria?.StatusCodes?.Items ?? []);
    origins.set(group.Id, new OriginGroup(group.Id, primary, secondary, statuses, onFailover));
  }

  const behaviors = (config.CacheBehaviors?.Items ?? []).map((behavior) =>
    routeBehavior(behavior, behavior.PathPattern ?? "*", origins, snapshot),
  );
  const defaultBehavior = routeBehavior(
    config.DefaultCacheBehavior ?? { TargetOriginId: undefined, ViewerProtocolPolicy: undefined },
    undefined,
    origins,
    snapshot,
  );
  const customErrors = compileCustomErrors(config.CustomErrorResponses);

  const hostNames = [snapshot.domainName, ...(config.Aliases?.Items ?? [])].map((name) => name.toLowerCase());
  return {
    id: snapshot.id,
    arn: snapshot.arn,
    version: snapshot.version,
    domainName: snapshot.domainName.toLowerCase(),
    hostNames,
    enabled: config.Enabled !== false,
    defaultRootObject: (config.DefaultRootObject ?? "").replace(/^\/+/, ""),
    logsRequests: config.Logging?.Enabled === true,
    behaviors,
    defaultBehavior,
    customErrors,
    errorCachingMinTtlSeconds: new Map(
      [...customErrors].flatMap(([status, rule]) =>
        rule.errorCachingMinTtlSeconds === undefined ? [] : [[status, rule.errorCachingMinTtlSeconds] as const],
      ),
    ),
  };
}

/**
 * Returns whether the behavior forwards any cookie to the origin, in its key
 * or through its origin request policy. CloudFront passes the origin's
 * Set-Cookie to viewers only then, and removes it otherwise.
 */
export function forwardsCookies(behavior: RoutedBehavior): boolean {
  return behavior.cache.key.cookies.mode !== "none" || behavior.cache.forward.cookies.mode !== "none";
}

/** Returns the first behavior whose path pattern matches, else the default behavior. */
export function selectBehavior(distribution: RoutedDistribution, path: string): RoutedBehavior {
  for (const behavior of distribution.behaviors) {
    if (behavior.matcher?.test(path) === true) return behavior;
  }
  return distribution.defaultBehavior;
}

/** Distributions by id and by host name. Each change is applied synchronously, so no request finds it half applied. */
export class RoutingTable {
  private readonly byId = new Map<string, RoutedDistribution>();
  private readonly byHost = new Map<string, RoutedDistribution>();

  get(distributionId: string): RoutedDistribution | undefined {
    return this.byId.get(distributionId);
  }

  /** Looks up a lower-case host name without port. */
  lookup(hostName: string): RoutedDistribution | undefined {
    return this.byHost.get(hostName);
  }

  /** Replaces a distribution's routes with a newer compiled version. */
  apply(distribution: RoutedDistribution): void {
    this.remove(distribution.id);
    this.byId.set(distribution.id, distribution);
    // NOTE: when two distributions claim one alias, the one applied last wins;
    // the control plane is expected to reject such a config (CNAMEAlreadyExists).
    for (const name of distribution.hostNames) this.byHost.set(name, distribution);
  }

  remove(distributionId: string): RoutedDistribution | undefined {
    const previous = this.byId.get(distributionId);
    if (previous === undefined) return undefined;
    this.byId.delete(distributionId);
    for (const name of previous.hostNames) {
      if (this.byHost.get(name) === previous) this.byHost.delete(name);
    }
    return previous;
  }
}

import type { Origin as OriginConfig } from "@aws-sdk/client-cloudfront";
import type { DistributionSnapshot } from "../cluster/types.js";
import { CustomOrigin } from "./custom.js";
import type { OriginPools } from "./pools.js";
import { bucketOfS3Domain, S3Origin } from "./s3.js";
import type { Origin } from "./types.js";

export { OriginGroup } from "./group.js";
export { OriginPools, viewerStatusOf } from "./pools.js";
export { OriginError, type Origin, type OriginRequest, type OriginResponse } from "./types.js";

export interface OriginContext {
  /** Base URL of the bucket store that S3 origin domains refer to. */
  s3Endpoint: string;
  /** The key that signs origin requests as the CloudFront service principal. */
  serviceCredentials: { accessKeyId: string; secretAccessKey: string };
  pools: OriginPools;
}

/** CloudFront's defaults for origin connections, in seconds or counts as the config fields use. */
const DEFAULT_CONNECTION_TIMEOUT_SECONDS = 10;
const DEFAULT_CONNECTION_ATTEMPTS = 3;
const DEFAULT_READ_TIMEOUT_SECONDS = 30;
const DEFAULT_KEEPALIVE_TIMEOUT_SECONDS = 5;

function customHeadersOf(config: OriginConfig): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const item of config.CustomHeaders?.Items ?? []) {
    if (item.HeaderName !== undefined && item.HeaderValue !== undefined) {
      headers[item.HeaderName.toLowerCase()] = item.HeaderValue;
    }
  }
  return headers;
}

/**
 * Builds the origin for one entry of a distribution's Origins: an S3 origin
 * when the domain name names a bucket and no CustomOriginConfig is set,
 * else a custom HTTP origin.
 */
export function createOrigin(config: OriginConfig, snapshot: DistributionSnapshot, context: OriginContext): Origin {
  const id = config.Id ?? "";
  const domainName = config.DomainName ?? "";
  const originPath = (config.OriginPath ?? "").replace(/\/+$/, "");
  const connectionTimeoutSeconds = config.ConnectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT_SECONDS;
  const connectionAttempts = config.ConnectionAttempts ?? DEFAULT_CONNECTION_ATTEMPTS;
  const bucket = bucketOfS3Domain(domainName);

  if (bucket !== undefined && config.CustomOriginConfig === undefined) {
    const accessControlId = config.OriginAccessControlId;
    const accessControl =
      accessControlId === undefined || accessControlId === ""
        ? undefined
        : snapshot.originAccessControls[accessControlId];
    return new S3Origin({
      id,
      bucket,
      originPath,
      endpoint: context.s3Endpoint,
      accessControl,
      distributionArn: snapshot.arn,
      credentials: context.serviceCredentials,
      customHeaders: customHeadersOf(config),
      connectionTimeoutSeconds,
      connectionAttempts,
      pools: context.pools,
    });
  }

  const custom = config.CustomOriginConfig;
  return new CustomOrigin({
    id,
    domainName,
    originPath,
    httpPort: custom?.HTTPPort ?? 80,
    httpsPort: custom?.HTTPSPort ?? 443,
    protocolPolicy: custom?.OriginProtocolPolicy ?? "https-only",
    readTimeoutSeconds: custom?.OriginReadTimeout ?? DEFAULT_READ_TIMEOUT_SECONDS,
    keepAliveTimeoutSeconds: custom?.OriginKeepaliveTimeout ?? DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
    connectionTimeoutSeconds,
    connectionAttempts,
    customHeaders: customHeadersOf(config),
    pools: context.pools,
  });
}

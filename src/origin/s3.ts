import type { OriginAccessControlConfig } from "@aws-sdk/client-cloudfront";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { SOURCE_ARN_HEADER } from "../api/auth/principal.js";
import type { OriginPools } from "./pools.js";
import { sendPooled } from "./pools.js";
import type { Origin, OriginRequest, OriginResponse } from "./types.js";

/** Origin domain names that name a bucket: `<bucket>.s3.amazonaws.com` or `<bucket>.s3.<region>.amazonaws.com`. */
const S3_DOMAIN = /^([a-z0-9][a-z0-9.-]*[a-z0-9])\.s3(?:\.([a-z0-9-]+))?\.amazonaws\.com$/;

/** Returns the bucket an S3 origin domain name names, or undefined for any other domain. */
export function bucketOfS3Domain(domainName: string): string | undefined {
  return S3_DOMAIN.exec(domainName.toLowerCase())?.[1];
}

/** CloudFront's defaults for S3 origins, in the units of the config fields. */
const S3_READ_TIMEOUT_SECONDS = 30;
const S3_KEEPALIVE_TIMEOUT_SECONDS = 5;

export interface S3OriginSettings {
  id: string;
  bucket: string;
  /** The origin's OriginPath: empty or `/prefix` without a trailing slash. */
  originPath: string;
  /** Base URL of the bucket store, such as `http://127.0.0.1:9000`. */
  endpoint: string;
  /** The origin access control, when requests must be signed. */
  accessControl: OriginAccessControlConfig | undefined;
  distributionArn: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  customHeaders: Record<string, string>;
  connectionTimeoutSeconds: number;
  connectionAttempts: number;
  pools: OriginPools;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Percent-encodes every byte of `value` except RFC 3986 unreserved characters and `/`. */
function encodeS3Path(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()*]/g, (char) => "%" + char.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%2F/g, "/");
}

/** Parses a query string into decoded names and values, as SigV4 canonicalization expects them. */
function parseSigningQuery(query: string): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const name = safeDecode(equals < 0 ? pair : pair.slice(0, equals));
    const value = safeDecode(equals < 0 ? "" : pair.slice(equals + 1));
    const existing = result[name];
    if (existing === undefined) result[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else result[name] = [existing, value];
  }
  return result;
}

/**
 * An S3 bucket origin, reached path-style at the store endpoint. With an
 * origin access control that signs (`always` or `no-override`), each request
 * is signed with SigV4 for service `s3` as the CloudFront service principal
 * and carries the distribution ARN in a signed header, which the store's
 * bucket policy sees as `aws:SourceArn`.
 */
export class S3Origin implements Origin {
  readonly id: string;
  private readonly signer: SignatureV4 | undefined;
  private readonly endpointUrl: URL;

  constructor(private readonly settings: S3OriginSettings) {
    this.id = settings.id;
    this.endpointUrl = new URL(settings.endpoint);
    const behavior = settings.accessControl?.SigningBehavior;
    const signs = settings.accessControl !== undefined && (behavior === "always" || behavior === "no-override");
    this.signer = signs
      ? new SignatureV4({
          service: "s3",
          region: "us-east-1",
          credentials: settings.credentials,
          sha256: Hash.bind(null, "sha256"),
          // The path is given in its canonical form below, so the signer must not escape it again.
          uriEscapePath: false,
          applyChecksum: false,
        })
      : undefined;
  }

  async fetch(request: OriginRequest): Promise<OriginResponse> {
    const settings = this.settings;
    // The viewer's path goes out byte for byte, so `%2F` stays part of one key segment.
    const path = `/${settings.bucket}${settings.originPath}${request.path}`;
    const target = request.query === "" ? path : `${path}?${request.query}`;
    const host = this.endpointUrl.host;
    const headers: Record<string, string> = { ...request.headers, ...settings.customHeaders, host };

    if (this.signer !== undefined) {
      // The viewer's own credentials never reach the bucket: the edge signs as itself.
      delete headers.authorization;
      const signed = await this.signer.sign({
        method: request.method,
        protocol: this.endpointUrl.protocol,
        hostname: this.endpointUrl.hostname,
        ...(this.endpointUrl.port === "" ? {} : { port: Number(this.endpointUrl.port) }),
        // The canonical URI that S3-style verifiers compute: the decoded path encoded once.
        path: encodeS3Path(safeDecode(path)),
        query: parseSigningQuery(request.query),
        headers: {
          host,
          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
          [SOURCE_ARN_HEADER]: settings.distributionArn,
        },
      });
      Object.assign(headers, signed.headers);
    }

    const origin = this.endpointUrl.origin;
    const pool = settings.pools.get(origin, {
      connectTimeoutMs: settings.connectionTimeoutSeconds * 1000,
      keepAliveTimeoutMs: S3_KEEPALIVE_TIMEOUT_SECONDS * 1000,
    });
    const response = await sendPooled(pool, origin, {
      method: request.method,
      target,
      headers,
      body: request.body,
      readTimeoutMs: S3_READ_TIMEOUT_SECONDS * 1000,
      connectTimeoutMs: settings.connectionTimeoutSeconds * 1000,
      connectionAttempts: settings.connectionAttempts,
    });
    response.signed = this.signer !== undefined;
    return response;
  }
}

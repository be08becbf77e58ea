import { createHmac, timingSafeEqual } from "node:crypto";
import type { ApiRequest } from "../context.js";
import { ApiError, authErrors } from "../errors.js";
import type { CredentialStore, Principal } from "./principal.js";
import { MAX_CLOCK_SKEW_MS, formatAmzDate, parseAmzDate } from "./sigv4.js";

/**
 * Query parameters that are part of the SigV2 canonicalized resource
 * ("Signing and authenticating REST requests", Amazon S3 developer guide,
 * plus the subresources added since, as botocore's HmacV1Auth lists them).
 */
const SIGNED_SUBRESOURCES = new Set([
  "accelerate",
  "acl",
  "analytics",
  "cors",
  "delete",
  "encryption",
  "intelligent-tiering",
  "inventory",
  "lifecycle",
  "location",
  "logging",
  "metrics",
  "notification",
  "object-lock",
  "ownershipControls",
  "partNumber",
  "policy",
  "policyStatus",
  "publicAccessBlock",
  "replication",
  "requestPayment",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
  "restore",
  "select",
  "select-type",
  "tagging",
  "torrent",
  "uploadId",
  "uploads",
  "versionId",
  "versioning",
  "versions",
  "website",
]);

function header(request: ApiRequest, name: string): string | undefined {
  const value = request.raw.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

function queryParameter(request: ApiRequest, name: string): string | undefined {
  return request.query.find(([candidate]) => candidate === name)?.[1];
}

function compareStrings(left: string, right: string): number {
  if (left < right) return -1;
  if (left > right) return 1;
  return 0;
}

/** Returns whether a request carries a SigV2 signature, in the Authorization header or the query. */
export function hasSigV2(request: ApiRequest): boolean {
  const authorization = header(request, "authorization");
  if (authorization !== undefined) return authorization.startsWith("AWS ");
  return queryParameter(request, "AWSAccessKeyId") !== undefined && queryParameter(request, "Signature") !== undefined;
}

/** Builds the SigV2 string to sign: verb, Content-MD5, Content-Type, date, x-amz-* headers, resource. */
export function sigV2StringToSign(
  request: ApiRequest,
  dateOrExpires: string,
  hostBucket: string | undefined,
  resourceOverride?: string,
): string {
  const amzHeaders = new Map<string, string[]>();
  for (let i = 0; i + 1 < request.raw.rawHeaders.length; i += 2) {
    const name = request.raw.rawHeaders[i]!.toLowerCase();
    if (!name.startsWith("x-amz-")) continue;
    const value = request.raw.rawHeaders[i + 1]!.trim().replace(/\s*\r?\n\s*/g, " ");
    amzHeaders.set(name, [...(amzHeaders.get(name) ?? []), value]);
  }
  const canonicalHeaders = [...amzHeaders.keys()]
    .sort()
    .map((name) => `${name}:${amzHeaders.get(name)!.join(",")}\n`)
    .join("");

  const subresources = request.query
    .filter(([name]) => SIGNED_SUBRESOURCES.has(name))
    .sort(([left], [right]) => compareStrings(left, right))
    .map(([name, value]) => (value === "" ? name : `${name}=${value}`));
  const resourcePath = (hostBucket === undefined ? "" : `/${hostBucket}`) + request.path;
  const resource = resourceOverride ?? resourcePath + (subresources.length > 0 ? `?${subresources.join("&")}` : "");

  return [
    request.method,
    header(request, "content-md5")?.trim() ?? "",
    header(request, "content-type")?.trim() ?? "",
    dateOrExpires,
    canonicalHeaders + resource,
  ].join("\n");
}

/**
 * Verifies a SigV2 request: `Authorization: AWS <key id>:<signature>` or the
 * presigned `AWSAccessKeyId`, `Expires` and `Signature` query parameters.
 * Returns the principal of the signing key.
 */
export function verifySigV2(
  request: ApiRequest,
  credentials: CredentialStore,
  nowMs: number,
  hostBucket?: string,
): Exclude<Principal, { type: "anonymous" }> {
  const authorization = header(request, "authorization");
  let accessKeyId: string;
  let signature: string;
  let dateOrExpires: string;
  if (authorization !== undefined) {
    const match = /^AWS ([^:\s]+):(\S+)$/.exec(authorization.trim());
    if (!match) {
      throw new ApiError("InvalidArgument", 400, "Authorization header is invalid -- one and only one ' ' (space) required", {
        details: { ArgumentName: "Authorization", ArgumentValue: "AWS ..." },
      });
    }
    accessKeyId = match[1]!;
    signature = match[2]!;
    const amzDate = header(request, "x-amz-date");
    const date = amzDate ?? header(request, "date");
    if (date === undefined) {
      throw new ApiError("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header");
    }
    const requestTimeMs = parseAmzDate(date);
    if (Math.abs(requestTimeMs - nowMs) > MAX_CLOCK_SKEW_MS) {
      throw authErrors.requestTimeTooSkewed(date, formatAmzDate(nowMs));
    }
    // With x-amz-date present it is signed among the x-amz-* headers and the date line is empty.
    dateOrExpires = amzDate === undefined ? date : "";
  } else {
    accessKeyId = queryParameter(request, "AWSAccessKeyId")!;
    signature = queryParameter(request, "Signature")!;
    const expires = queryParameter(request, "Expires");
    if (expires === undefined || !/^\d+$/.test(expires)) {
      throw new ApiError("AccessDenied", 403, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters");
    }
    if (Number(expires) * 1000 < nowMs) {
      throw new ApiError("AccessDenied", 403, "Request has expired", {
        details: { Expires: new Date(Number(expires) * 1000).toISOString(), ServerTime: new Date(nowMs).toISOString() },
      });
    }
    dateOrExpires = expires;
  }

  const key = credentials.lookup(accessKeyId);
  if (!key) throw authErrors.invalidAccessKeyId();
  const stringToSign = sigV2StringToSign(request, dateOrExpires, hostBucket);
  const matches = (candidate: string): boolean => {
    const expected = Buffer.from(createHmac("sha1", key.secretAccessKey).update(candidate, "utf8").digest("base64"));
    const provided = Buffer.from(signature);
    return expected.length === provided.length && timingSafeEqual(expected, provided);
  };
  // botocore signs the path of its request template: a path-style bucket
  // request such as `GET /bucket` as `/bucket/`, and ListObjectsV2 as
  // `/bucket?list-type=2`. Bucket-only paths are also checked in those forms.
  const bucketOnly = hostBucket === undefined && /^\/[^/]+$/.test(request.path);
  const alternatives: string[] = [];
  if (bucketOnly) {
    alternatives.push(`${request.path}/`);
    const listType = queryParameter(request, "list-type");
    if (listType !== undefined) alternatives.push(`${request.path}?list-type=${listType}`);
  }
  const valid =
    matches(stringToSign) ||
    alternatives.some((resource) => matches(sigV2StringToSign(request, dateOrExpires, hostBucket, resource)));
  if (!valid) {
    throw authErrors.signatureDoesNotMatch({ StringToSign: stringToSign, SignatureProvided: signature });
  }
  if (key.principal.type === "service") return { ...key.principal, sourceArn: undefined };
  return key.principal;
}

import type { ApiRequest } from "../context.js";
import { ApiError } from "../errors.js";

/** The S3 operations this service implements, named as in the S3 API reference. */
export type S3Operation =
  | "ListBuckets"
  | "CreateBucket"
  | "HeadBucket"
  | "DeleteBucket"
  | "GetBucketLocation"
  | "GetBucketPolicy"
  | "PutBucketPolicy"
  | "DeleteBucketPolicy"
  | "ListObjects"
  | "ListObjectsV2"
  | "ListMultipartUploads"
  | "DeleteObjects"
  | "PutObject"
  | "CopyObject"
  | "GetObject"
  | "HeadObject"
  | "DeleteObject"
  | "CreateMultipartUpload"
  | "UploadPart"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListParts";

export interface S3Route {
  operation: S3Operation;
  bucket: string | undefined;
  key: string | undefined;
}

type MethodNames = Partial<Record<"GET" | "PUT" | "DELETE" | "POST" | "HEAD", string>>;

/** Bucket subresources this service does not build, with the operation each method would be. */
const UNBUILT_BUCKET_SUBRESOURCES: Record<string, MethodNames> = {
  acl: { GET: "GetBucketAcl", PUT: "PutBucketAcl" },
  cors: { GET: "GetBucketCors", PUT: "PutBucketCors", DELETE: "DeleteBucketCors" },
  lifecycle: { GET: "GetBucketLifecycleConfiguration", PUT: "PutBucketLifecycleConfiguration", DELETE: "DeleteBucketLifecycle" },
  versioning: { GET: "GetBucketVersioning", PUT: "PutBucketVersioning" },
  versions: { GET: "ListObjectVersions" },
  tagging: { GET: "GetBucketTagging", PUT: "PutBucketTagging", DELETE: "DeleteBucketTagging" },
  website: { GET: "GetBucketWebsite", PUT: "PutBucketWebsite", DELETE: "DeleteBucketWebsite" },
  encryption: { GET: "GetBucketEncryption", PUT: "PutBucketEncryption", DELETE: "DeleteBucketEncryption" },
  logging: { GET: "GetBucketLogging", PUT: "PutBucketLogging" },
  notification: { GET: "GetBucketNotificationConfiguration", PUT: "PutBucketNotificationConfiguration" },
  replication: { GET: "GetBucketReplication", PUT: "PutBucketReplication", DELETE: "DeleteBucketReplication" },
  publicAccessBlock: { GET: "GetPublicAccessBlock", PUT: "PutPublicAccessBlock", DELETE: "DeletePublicAccessBlock" },
  ownershipControls: {
    GET: "GetBucketOwnershipControls",
    PUT: "PutBucketOwnershipControls",
    DELETE: "DeleteBucketOwnershipControls",
  },
  "object-lock": { GET: "GetObjectLockConfiguration", PUT: "PutObjectLockConfiguration" },
  requestPayment: { GET: "GetBucketRequestPayment", PUT: "PutBucketRequestPayment" },
  accelerate: { GET: "GetBucketAccelerateConfiguration", PUT: "PutBucketAccelerateConfiguration" },
  analytics: { GET: "GetBucketAnalyticsConfiguration", PUT: "PutBucketAnalyticsConfiguration", DELETE: "DeleteBucketAnalyticsConfiguration" },
  metrics: { GET: "GetBucketMetricsConfiguration", PUT: "PutBucketMetricsConfiguration", DELETE: "DeleteBucketMetricsConfiguration" },
  inventory: { GET: "GetBucketInventoryConfiguration", PUT: "PutBucketInventoryConfiguration", DELETE: "DeleteBucketInventoryConfiguration" },
  "intelligent-tiering": {
    GET: "GetBucketIntelligentTieringConfiguration",
    PUT: "PutBucketIntelligentTieringConfiguration",
    DELETE: "DeleteBucketIntelligentTieringConfiguration",
  },
  policyStatus: { GET: "GetBucketPolicyStatus" },
  metadataTable: { GET: "GetBucketMetadataTableConfiguration", POST: "CreateBucketMetadataTableConfiguration" },
  session: { GET: "CreateSession" },
};

/** Object subresources this service does not build. */
const UNBUILT_OBJECT_SUBRESOURCES: Record<string, MethodNames> = {
  acl: { GET: "GetObjectAcl", PUT: "PutObjectAcl" },
  tagging: { GET: "GetObjectTagging", PUT: "PutObjectTagging", DELETE: "DeleteObjectTagging" },
  retention: { GET: "GetObjectRetention", PUT: "PutObjectRetention" },
  "legal-hold": { GET: "GetObjectLegalHold", PUT: "PutObjectLegalHold" },
  attributes: { GET: "GetObjectAttributes" },
  torrent: { GET: "GetObjectTorrent" },
  restore: { POST: "RestoreObject" },
  select: { POST: "SelectObjectContent" },
  renameObject: { PUT: "RenameObject" },
};

/** Query parameters that are arguments of operations, not subresources. */
const ARGUMENTS = new Set([
  "prefix",
  "delimiter",
  "marker",
  "max-keys",
  "list-type",
  "continuation-token",
  "start-after",
  "fetch-owner",
  "encoding-type",
  "uploadId",
  "partNumber",
  "max-parts",
  "part-number-marker",
  "max-uploads",
  "key-marker",
  "upload-id-marker",
  "versionId",
  "x-id",
  "bucket-region",
  "continuation-token",
  "max-buckets",
  "response-content-type",
  "response-content-language",
  "response-expires",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "AWSAccessKeyId",
  "Expires",
  "Signature",
  "location",
  "policy",
  "uploads",
  "delete",
]);

function notImplemented(operation: string): ApiError {
  return new ApiError("NotImplemented", 501, `${operation} is not implemented by this server.`, {
    details: { Operation: operation },
  });
}

function methodNotAllowed(method: string): ApiError {
  return new ApiError("MethodNotAllowed", 405, "The specified method is not allowed against this resource.", {
    details: { Method: method, ResourceType: "OBJECT" },
  });
}

function decodePathPart(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ApiError("InvalidURI", 400, "Couldn't parse the specified URI.", { details: { URI: value } });
  }
}

/**
 * Returns the bucket named by a virtual-hosted-style Host header
 * (`<bucket>.s3.<domain>`, `<bucket>.s3-<region>.<domain>` or
 * `<bucket>.localhost`), or undefined for path-style requests.
 */
export function virtualHostBucket(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const name = host.replace(/:\d+$/, "").toLowerCase();
  const match = /^(.+?)\.s3[.-]/.exec(name) ?? /^(.+)\.localhost$/.exec(name);
  return match?.[1];
}

/** Splits the request into bucket and key, path-style first, then virtual-hosted style. */
export function parseBucketAndKey(request: ApiRequest): { bucket: string | undefined; key: string | undefined } {
  const hostBucket = virtualHostBucket(request.raw.headers.host);
  const path = request.path.startsWith("/") ? request.path.slice(1) : request.path;
  if (hostBucket !== undefined) {
    return { bucket: hostBucket, key: path === "" ? undefined : decodePathPart(path) };
  }
  if (path === "") return { bucket: undefined, key: undefined };
  const slash = path.indexOf("/");
  if (slash < 0) return { bucket: decodePathPart(path), key: undefined };
  const key = path.slice(slash + 1);
  return { bucket: decodePathPart(path.slice(0, slash)), key: key === "" ? undefined : decodePathPart(key) };
}

/** Resolves the S3 operation of a request from its method, bucket, key and subresources. */
export function routeRequest(request: ApiRequest): S3Route {
  const { bucket, key } = parseBucketAndKey(request);
  const names = new Set(request.query.map(([name]) => name));
  const method = request.method.toUpperCase();
  const route = (operation: S3Operation): S3Route => ({ operation, bucket, key });

  if (bucket === undefined) {
    if (method === "GET") return route("ListBuckets");
    throw methodNotAllowed(method);
  }

  const unbuilt = key === undefined ? UNBUILT_BUCKET_SUBRESOURCES : UNBUILT_OBJECT_SUBRESOURCES;
  for (const name of names) {
    const operations = unbuilt[name];
    if (operations) {
      const operation = operations[method as keyof MethodNames];
      if (operation) throw notImplemented(operation);
      throw methodNotAllowed(method);
    }
  }
  for (const [name, value] of request.query) {
    if (!ARGUMENTS.has(name) && !name.startsWith("X-Amz-") && !name.startsWith("x-amz-") && value === "") {
      throw notImplemented(`The subresource '${name}'`);
    }
  }

  if (key === undefined) {
    switch (method) {
      case "GET":
        if (names.has("location")) return route("GetBucketLocation");
        if (names.has("policy")) return route("GetBucketPolicy");
        if (names.has("uploads")) return route("ListMultipartUploads");
        if (request.query.some(([name, value]) => name === "list-type" && value === "2")) return route("ListObjectsV2");
        return route("ListObjects");
      case "HEAD":
        return route("HeadBucket");
      case "PUT":
        if (names.has("policy")) return route("PutBucketPolicy");
        return route("CreateBucket");
      case "DELETE":
        if (names.has("policy")) return route("DeleteBucketPolicy");
        return route("DeleteBucket");
      case "POST":
        if (names.has("delete")) return route("DeleteObjects");
        throw notImplemented("POST Object (browser-based upload)");
      default:
        throw methodNotAllowed(method);
    }
  }

  switch (method) {
    case "GET":
      if (names.has("uploadId")) return route("ListParts");
      return route("GetObject");
    case "HEAD":
      return route("HeadObject");
    case "PUT":
      // UploadPartCopy routes as UploadPart: both are authorized as s3:PutObject
      // on the target, and the handler tells them apart by x-amz-copy-source.
      if (names.has("uploadId")) return route("UploadPart");
      if (request.raw.headers["x-amz-copy-source"] !== undefined) return route("CopyObject");
      return route("PutObject");
    case "DELETE":
      if (names.has("uploadId")) return route("AbortMultipartUpload");
      return route("DeleteObject");
    case "POST":
      if (names.has("uploads")) return route("CreateMultipartUpload");
      if (names.has("uploadId")) return route("CompleteMultipartUpload");
      throw methodNotAllowed(method);
    default:
      throw methodNotAllowed(method);
  }
}

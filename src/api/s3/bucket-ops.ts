import type { ServerResponse } from "node:http";
import type { ApiRequest } from "../context.js";
import { ApiError, authErrors } from "../errors.js";
import { readVerifiedPayload } from "../auth/payload.js";
import { parseBucketPolicy, MAX_POLICY_BYTES } from "../../store/policy/document.js";
import { storeErrors } from "../../store/errors.js";
import { validateBucketName, validateObjectKey } from "../../store/names.js";
import { isAllowed, ownsBucket, recordBucketOwner, resourceArn } from "./authorize.js";
import { isOwner, ownerOf, sendEmpty, type S3Context } from "./context.js";
import type { S3Route } from "./router.js";
import { isoTimestamp, malformedXml, parseXmlDocument, sendXml, textOf } from "./xml.js";

/** Request documents of bucket operations are small; S3 caps DeleteObjects at 1000 keys. */
const MAX_DOCUMENT_BYTES = 2 * 1024 * 1024;
const MAX_DELETE_OBJECTS = 1000;
const DEFAULT_REGION = "us-east-1";

export async function listBuckets(context: S3Context, request: ApiRequest, response: ServerResponse): Promise<void> {
  if (!isOwner(request)) throw authErrors.accessDenied();
  // A user lists the buckets it owns; the root lists them all.
  const buckets = context.store.metadata.listBuckets().filter((bucket) => ownsBucket(request, bucket));
  sendXml(response, "ListAllMyBucketsResult", {
    Owner: ownerOf(context.accountId),
    Buckets: {
      Bucket: buckets.map((bucket) => ({
        Name: bucket.name,
        CreationDate: isoTimestamp(bucket.createdAtMs),
        BucketRegion: bucket.region,
      })),
    },
  });
}

export async function createBucket(
  context: S3Context,
  request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const name = route.bucket!;
  validateBucketName(name);
  if (!isOwner(request)) throw authErrors.accessDenied();
  const body = await readVerifiedPayload(request, MAX_DOCUMENT_BYTES, { idleTimeoutMs: context.bodyIdleTimeoutMs });
  let region = request.sigv4?.region ?? DEFAULT_REGION;
  if (body.length > 0) {
    const configuration = parseXmlDocument(body, "CreateBucketConfiguration");
    const constraint = textOf(configuration, "LocationConstraint");
    if (constraint !== undefined && constraint !== "") region = constraint;
  }
  const existing = context.store.metadata.getBucket(name);
  if (existing !== undefined && !ownsBucket(request, existing)) {
    // S3 answers BucketAlreadyOwnedByYou only to the owner; anyone else gets BucketAlreadyExists.
    throw new ApiError(
      "BucketAlreadyExists",
      409,
      "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
      { details: { BucketName: name } },
    );
  }
  context.store.createBucket(name, region, Date.now());
  recordBucketOwner(request, context.store.requireBucket(name));
  request.log.info({ region }, "bucket created");
  sendEmpty(response, 200, { location: `/${name}` });
}

export async function headBucket(
  context: S3Context,
  _request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  sendEmpty(response, 200, { "x-amz-bucket-region": bucket.region });
}

export async function deleteBucket(
  context: S3Context,
  request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  await context.store.deleteBucket(route.bucket!);
  request.log.info("bucket deleted");
  sendEmpty(response, 204);
}

export async function getBucketLocation(
  context: S3Context,
  _request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  // S3 reports us-east-1 as an empty LocationConstraint.
  sendXml(response, "LocationConstraint", { "#text": bucket.region === DEFAULT_REGION ? "" : bucket.region });
}

export async function getBucketPolicy(
  context: S3Context,
  _request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  if (bucket.policyJson === undefined) throw storeErrors.noSuchBucketPolicy(bucket.name);
  response.writeHead(200, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(bucket.policyJson),
  });
  response.end(bucket.policyJson);
}

export async function putBucketPolicy(
  context: S3Context,
  request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  const body = await readVerifiedPayload(request, MAX_POLICY_BYTES + 1, { idleTimeoutMs: context.bodyIdleTimeoutMs });
  const text = body.toString("utf8");
  parseBucketPolicy(text, bucket.name);
  context.store.metadata.setBucketPolicy(bucket.name, text);
  request.log.info("bucket policy set");
  sendEmpty(response, 204);
}

export async function deleteBucketPolicy(
  context: S3Context,
  request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  context.store.metadata.setBucketPolicy(bucket.name, undefined);
  request.log.info("bucket policy deleted");
  sendEmpty(response, 204);
}

/** DeleteObjects: each key is authorized and deleted on its own, and fails on its own. */
export async function deleteObjects(
  context: S3Context,
  request: ApiRequest,
  response: ServerResponse,
  route: S3Route,
): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  // "The Content-MD5 or x-amz-sdk-checksum-algorithm header is required for all
  // Multi-Object Delete requests" (DeleteObjects, Amazon S3 API reference).
  const headers = request.raw.headers;
  const hasDigest =
    headers["content-md5"] !== undefined ||
    headers["x-amz-sdk-checksum-algorithm"] !== undefined ||
    headers["x-amz-trailer"] !== undefined ||
    Object.keys(headers).some((name) => name.startsWith("x-amz-checksum-") && name !== "x-amz-checksum-mode");
  if (!hasDigest) {
    throw new ApiError("InvalidRequest", 400, "Missing required header for this request: Content-MD5", {
      details: { ArgumentName: "Content-MD5" },
    });
  }
  const body = await readVerifiedPayload(request, MAX_DOCUMENT_BYTES, { idleTimeoutMs: context.bodyIdleTimeoutMs });
  const document = parseXmlDocument(body, "Delete");
  const objects = document.Object;
  if (!Array.isArray(objects) || objects.length === 0 || objects.length > MAX_DELETE_OBJECTS) throw malformedXml();
  const quiet = textOf(document, "Quiet")?.trim().toLowerCase() === "true";

  const deleted: Array<Record<string, string>> = [];
  const errors: Array<Record<string, string>> = [];
  for (const entry of objects as unknown[]) {
    if (typeof entry !== "object" || entry === null) throw malformedXml();
    const key = textOf(entry as Record<string, unknown>, "Key");
    if (key === undefined) throw malformedXml();
    try {
      validateObjectKey(key);
      if (!isAllowed(request, bucket, "s3:DeleteObject", resourceArn(bucket.name, key), true)) {
        throw authErrors.accessDenied();
      }
      await context.store.deleteObject(bucket.name, key);
      deleted.push({ Key: key });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      errors.push({ Key: key, Code: error.code, Message: error.message });
    }
  }
  sendXml(response, "DeleteResult", { ...(quiet ? {} : { Deleted: deleted }), Error: errors });
}

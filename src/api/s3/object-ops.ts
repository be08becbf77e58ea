import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ApiRequest } from "../context.js";
import { ApiError, authErrors } from "../errors.js";
import { openVerifiedPayload } from "../auth/payload.js";
import { checksumHeaderName } from "../../store/checksums.js";
import { storeErrors } from "../../store/errors.js";
import type { ObjectRecord, StoredObject } from "../../store/metadata.js";
import type { ByteRange } from "../../store/object-files.js";
import { validateObjectKey } from "../../store/names.js";
import { accessDenied, authorize, denialOf, isAllowed, resourceArn } from "./authorize.js";
import { headerValue, isOwner, queryValue, sendEmpty, type S3Context } from "./context.js";
import {
  RESPONSE_OVERRIDES,
  collectStoredHeaders,
  etagListMatches,
  evaluateReadPreconditions,
  httpDate,
  parseRange,
  quotedEtag,
  setObjectHeaders,
} from "./object-headers.js";
import type { S3Route } from "./router.js";
import { isoTimestamp, sendXml } from "./xml.js";

/** The largest object a single PutObject may carry (5 GiB), as in S3. */
export const MAX_PUT_OBJECT_BYTES = 5 * 1024 ** 3;

/** Raises EntityTooLarge when the declared body length is over `maxBytes`. */
export function checkDeclaredLength(request: ApiRequest, maxBytes: number): void {
  const declared = headerValue(request, "x-amz-decoded-content-length") ?? headerValue(request, "content-length");
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new ApiError("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.", {
      details: { ProposedSize: declared, MaxSizeAllowed: String(maxBytes) },
    });
  }
}

function checksumResponseHeaders(record: { checksum: ObjectRecord["checksum"] }): Record<string, string> {
  if (!record.checksum) return {};
  return {
    [checksumHeaderName(record.checksum.algorithm)]: record.checksum.valueBase64,
    "x-amz-checksum-type": record.checksum.type,
  };
}

/** Checks PutObject's conditional-write headers (If-None-Match: *, If-Match) against the current version. */
function writePrecondition(request: ApiRequest, key: string): ((current: ObjectRecord | undefined) => void) | undefined {
  const ifNoneMatch = headerValue(request, "if-none-match");
  const ifMatch = headerValue(request, "if-match");
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== "*") {
    throw new ApiError("NotImplemented", 501, "PutObject supports If-None-Match only with the value *.", {
      details: { Header: "If-None-Match" },
    });
  }
  return (current) => {
    if (ifNoneMatch !== undefined && current !== undefined) throw storeErrors.preconditionFailed("If-None-Match");
    if (ifMatch !== undefined && (current === undefined || !etagListMatches(ifMatch, current.etag))) {
      if (current === undefined) throw storeErrors.noSuchKey(key);
      throw storeErrors.preconditionFailed("If-Match");
    }
  };
}

export async function putObject(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const bucket = route.bucket!;
  const key = route.key!;
  checkDeclaredLength(request, MAX_PUT_OBJECT_BYTES);
  const headers = collectStoredHeaders(request.raw.headers);
  const precondition = writePrecondition(request, key);
  const payload = openVerifiedPayload(request, { idleTimeoutMs: context.bodyIdleTimeoutMs });
  const record = await context.store.putObject(
    bucket,
    key,
    payload.body,
    async () => {
      const digests = payload.digests();
      return {
        sizeBytes: digests.sizeBytes,
        etag: digests.md5Hex,
        headers,
        checksum: digests.checksum && { ...digests.checksum, type: "FULL_OBJECT" },
        partsCount: undefined,
      };
    },
    precondition,
  );
  request.log.debug({ key, sizeBytes: record.sizeBytes }, "object stored");
  sendEmpty(response, 200, { etag: quotedEtag(record), ...checksumResponseHeaders(record) });
}

function responseOverrides(request: ApiRequest): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const [name, value] of request.query) {
    const header = RESPONSE_OVERRIDES[name];
    if (header !== undefined) overrides[header] = value;
  }
  if (Object.keys(overrides).length > 0 && request.principal.type === "anonymous") {
    throw new ApiError("InvalidRequest", 400, "Request specific response headers cannot be used for anonymous GET requests.");
  }
  return overrides;
}

/**
 * Looks up an object for GetObject and HeadObject. A caller that may not list
 * the bucket gets AccessDenied instead of NoSuchKey, as S3 does, so that it
 * cannot probe which keys exist.
 */
function readableObject(context: S3Context, request: ApiRequest, route: S3Route): StoredObject {
  const versionId = queryValue(request, "versionId");
  if (versionId !== undefined && versionId !== "null") {
    throw new ApiError("NoSuchVersion", 404, "The specified version does not exist.", {
      details: { Key: route.key!, VersionId: versionId },
    });
  }
  try {
    return context.store.requireObject(route.bucket!, route.key!);
  } catch (error) {
    if (error instanceof ApiError && error.code === "NoSuchKey" && !isOwner(request)) {
      const bucket = context.store.requireBucket(route.bucket!);
      const denial = denialOf(request, bucket, "s3:ListBucket", resourceArn(bucket.name), false);
      if (denial !== undefined) throw accessDenied(request, `the key does not exist, and ${denial}`);
    }
    throw error;
  }
}

/**
 * Resolves GetObject's `partNumber`: the byte range of that part of a
 * multipart object, or the whole object as its only part. A part number past
 * the last part gives InvalidPartNumber, as S3 does. An empty object's only
 * part has no byte range, so it is served whole.
 */
function partRange(record: StoredObject, partNumberText: string): ByteRange | undefined {
  if (!/^\d{1,5}$/.test(partNumberText) || Number(partNumberText) < 1 || Number(partNumberText) > 10_000) {
    throw new ApiError("InvalidArgument", 400, "Part number must be an integer between 1 and 10000, inclusive", {
      details: { ArgumentName: "partNumber", ArgumentValue: partNumberText },
    });
  }
  const partNumber = Number(partNumberText);
  if (partNumber === 1 && record.sizeBytes === 0) return undefined;
  let offset = 0;
  for (const [index, segment] of record.segments.entries()) {
    if (index + 1 === partNumber) return { start: offset, end: offset + segment.sizeBytes - 1 };
    offset += segment.sizeBytes;
  }
  throw new ApiError("InvalidPartNumber", 416, "The requested partnumber is not satisfiable", {
    details: { PartNumberRequested: partNumberText, ActualPartCount: String(record.segments.length) },
  });
}

export async function getObject(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const overrides = responseOverrides(request);
  const partNumber = queryValue(request, "partNumber");
  const rangeHeader = headerValue(request, "range");
  if (partNumber !== undefined && rangeHeader !== undefined) {
    throw new ApiError("InvalidRequest", 400, "Cannot specify both Range header and partNumber query parameter.");
  }

  // An overwrite may unlink the file between the lookup and the open; look up once more.
  for (let attempt = 0; ; attempt++) {
    const record = readableObject(context, request, route);
    if (evaluateReadPreconditions(request.raw.headers, record) === "not-modified") {
      sendEmpty(response, 304, { etag: quotedEtag(record), "last-modified": httpDate(record.lastModifiedMs) });
      return;
    }
    const range = partNumber === undefined ? parseRange(rangeHeader, record.sizeBytes) : partRange(record, partNumber);
    const isHead = request.method === "HEAD";
    const lengthBytes = range === undefined ? record.sizeBytes : range.end - range.start + 1;
    let body: Buffer | Readable | undefined;
    if (!isHead && lengthBytes > 0) {
      try {
        body = await context.store.readObject(record, range);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT" && attempt === 0) continue;
        throw error;
      }
    }

    const wantsChecksum = headerValue(request, "x-amz-checksum-mode")?.toUpperCase() === "ENABLED";
    setObjectHeaders(response, record, overrides, wantsChecksum && range === undefined);
    if (range) {
      response.statusCode = 206;
      response.setHeader("content-range", `bytes ${range.start}-${range.end}/${record.sizeBytes}`);
    } else {
      response.statusCode = 200;
    }
    response.setHeader("content-length", lengthBytes);
    if (partNumber !== undefined) response.setHeader("x-amz-mp-parts-count", String(record.segments.length));
    if (body === undefined) {
      response.end();
      return;
    }
    if (Buffer.isBuffer(body)) {
      response.end(body);
      return;
    }
    try {
      await pipeline(body, response);
    } catch (error) {
      // The status line is already sent, so a failure here can only cut the connection.
      request.log.debug({ err: error, key: route.key }, "object response stream ended early");
      response.destroy();
    }
    return;
  }
}

export async function deleteObject(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  await context.store.deleteObject(route.bucket!, route.key!);
  request.log.debug({ key: route.key }, "object deleted");
  sendEmpty(response, 204);
}

/** Parses `x-amz-copy-source` (`[/]bucket/key[?versionId=null]`, percent-encoded). */
export function parseCopySource(value: string): { bucket: string; key: string } {
  const [pathPart = "", query = ""] = value.split("?");
  let path: string;
  try {
    path = decodeURIComponent(pathPart);
  } catch {
    throw new ApiError("InvalidArgument", 400, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.");
  }
  if (path.startsWith("/")) path = path.slice(1);
  const slash = path.indexOf("/");
  if (slash <= 0 || slash === path.length - 1) {
    throw new ApiError("InvalidArgument", 400, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.", {
      details: { ArgumentName: "x-amz-copy-source", ArgumentValue: value },
    });
  }
  const versionId = new URLSearchParams(query).get("versionId");
  if (versionId !== null && versionId !== "null") {
    throw new ApiError("NoSuchVersion", 404, "The specified version does not exist.");
  }
  return { bucket: path.slice(0, slash), key: path.slice(slash + 1) };
}

/** A pass-through stream that computes the MD5 of what flows through it. */
export class Md5Transform extends Transform {
  private readonly hash = createHash("md5");
  hex = "";

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: () => void): void {
    this.hex = this.hash.digest("hex");
    callback();
  }
}

/**
 * Looks up the source of CopyObject or UploadPartCopy after checking that the
 * caller may read it (s3:GetObject) and that its x-amz-copy-source-if-*
 * conditions hold. A condition that does not hold gives PreconditionFailed.
 */
export function requireCopySource(context: S3Context, request: ApiRequest, source: { bucket: string; key: string }): StoredObject {
  validateObjectKey(source.key);
  const sourceBucket = context.store.requireBucket(source.bucket);
  authorize(request, sourceBucket, "s3:GetObject", resourceArn(source.bucket, source.key));
  const sourceRecord = context.store.requireObject(source.bucket, source.key);
  if (evaluateReadPreconditions(request.raw.headers, sourceRecord, "x-amz-copy-source-") === "not-modified") {
    throw storeErrors.preconditionFailed("x-amz-copy-source-If-None-Match");
  }
  return sourceRecord;
}

export async function copyObject(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const source = parseCopySource(headerValue(request, "x-amz-copy-source")!);
  const sourceRecord = requireCopySource(context, request, source);

  const directive = (headerValue(request, "x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") {
    throw new ApiError("InvalidArgument", 400, "Unknown metadata directive.", {
      details: { ArgumentName: "x-amz-metadata-directive", ArgumentValue: directive },
    });
  }
  if (directive === "COPY" && source.bucket === route.bucket && source.key === route.key) {
    throw new ApiError(
      "InvalidRequest",
      400,
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const headers = directive === "REPLACE" ? collectStoredHeaders(request.raw.headers) : sourceRecord.headers;
  const md5 = new Md5Transform();
  const record = await context.store.copyObject(sourceRecord, route.bucket!, route.key!, [md5], async () => ({
    sizeBytes: sourceRecord.sizeBytes,
    etag: md5.hex,
    headers,
    // A composite checksum describes the source's parts, which the copy does not keep.
    checksum: sourceRecord.checksum?.type === "FULL_OBJECT" ? sourceRecord.checksum : undefined,
    partsCount: undefined,
  }));
  const result: Record<string, string> = { ETag: quotedEtag(record), LastModified: isoTimestamp(record.lastModifiedMs) };
  if (record.checksum) {
    result[`Checksum${record.checksum.algorithm}`] = record.checksum.valueBase64;
    result.ChecksumType = record.checksum.type;
  }
  sendXml(response, "CopyObjectResult", result);
}

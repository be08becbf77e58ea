import { createHash, randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ApiRequest } from "../context.js";
import { ApiError } from "../errors.js";
import { openVerifiedPayload, readVerifiedPayload } from "../auth/payload.js";
import {
  checksumElementName,
  checksumHeaderName,
  compositeChecksum,
  createChecksumHasher,
  parseChecksumAlgorithm,
  type ChecksumAlgorithm,
  type ChecksumType,
  type StoredChecksum,
} from "../../store/checksums.js";
import type { PartRecord, UploadRecord } from "../../store/metadata.js";
import type { ByteRange } from "../../store/object-files.js";
import { commonPrefixOf, prefixSuccessor } from "../../store/listing.js";
import { uriEncode } from "../auth/sigv4.js";
import { headerValue, ownerOf, queryValue, sendEmpty, type S3Context } from "./context.js";
import { collectStoredHeaders, quotedEtag } from "./object-headers.js";
import { checkDeclaredLength, MAX_PUT_OBJECT_BYTES, Md5Transform, parseCopySource, requireCopySource } from "./object-ops.js";
import type { S3Route } from "./router.js";
import { isoTimestamp, malformedXml, parseXmlDocument, sendXml, textOf } from "./xml.js";

/** Multipart limits of S3 ("Amazon S3 multipart upload limits"). */
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PART_NUMBER = 10_000;
const MAX_COMPLETE_DOCUMENT_BYTES = 4 * 1024 * 1024;

function checksumHeaders(algorithm: ChecksumAlgorithm | undefined, type: ChecksumType | undefined): Record<string, string> {
  if (algorithm === undefined) return {};
  return { "x-amz-checksum-algorithm": algorithm, ...(type ? { "x-amz-checksum-type": type } : {}) };
}

function invalidArgument(name: string, value: string, message: string): ApiError {
  return new ApiError("InvalidArgument", 400, message, { details: { ArgumentName: name, ArgumentValue: value } });
}

export async function createMultipartUpload(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const headers = collectStoredHeaders(request.raw.headers);
  const algorithmName = headerValue(request, "x-amz-checksum-algorithm");
  const algorithm = algorithmName === undefined ? undefined : parseChecksumAlgorithm(algorithmName);
  if (algorithmName !== undefined && algorithm === undefined) {
    throw invalidArgument("x-amz-checksum-algorithm", algorithmName, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
  }
  const typeName = headerValue(request, "x-amz-checksum-type")?.toUpperCase();
  if (typeName !== undefined && typeName !== "FULL_OBJECT" && typeName !== "COMPOSITE") {
    throw invalidArgument("x-amz-checksum-type", typeName, "Value for x-amz-checksum-type is invalid; use FULL_OBJECT or COMPOSITE.");
  }
  // CRC64NVME exists only as a full-object checksum; the others default to composite.
  let type: ChecksumType | undefined = typeName as ChecksumType | undefined;
  if (algorithm !== undefined) type ??= algorithm === "CRC64NVME" ? "FULL_OBJECT" : "COMPOSITE";
  if (type === "FULL_OBJECT" && (algorithm === "SHA1" || algorithm === "SHA256")) {
    throw new ApiError("InvalidRequest", 400, `The ${algorithm} checksum algorithm does not support the FULL_OBJECT checksum type.`);
  }
  if (type === "COMPOSITE" && algorithm === "CRC64NVME") {
    throw new ApiError("InvalidRequest", 400, "The CRC64NVME checksum algorithm supports only the FULL_OBJECT checksum type.");
  }
  const upload: UploadRecord = {
    uploadId: randomBytes(24).toString("base64url"),
    bucket: route.bucket!,
    key: route.key!,
    initiatedAtMs: Date.now(),
    headers,
    checksumAlgorithm: algorithm,
    checksumType: algorithm === undefined ? undefined : type,
  };
  context.store.createUpload(upload);
  for (const [name, value] of Object.entries(checksumHeaders(upload.checksumAlgorithm, upload.checksumType))) response.setHeader(name, value);
  sendXml(response, "InitiateMultipartUploadResult", { Bucket: upload.bucket, Key: upload.key, UploadId: upload.uploadId });
}

function parsePartNumber(value: string | undefined): number {
  if (value === undefined || !/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > MAX_PART_NUMBER) {
    throw invalidArgument("partNumber", value ?? "", "Part number must be an integer between 1 and 10000, inclusive");
  }
  return Number(value);
}

function requireUpload(context: S3Context, request: ApiRequest, route: S3Route): UploadRecord {
  return context.store.requireUpload(route.bucket!, route.key!, queryValue(request, "uploadId") ?? "");
}

export async function uploadPart(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const partNumber = parsePartNumber(queryValue(request, "partNumber"));
  const upload = requireUpload(context, request, route);
  const copySource = headerValue(request, "x-amz-copy-source");
  if (copySource !== undefined) {
    await uploadPartCopy(context, request, response, upload, partNumber, copySource);
    return;
  }
  checkDeclaredLength(request, MAX_PUT_OBJECT_BYTES);
  const payload = openVerifiedPayload(request, {
    computeAlgorithm: upload.checksumAlgorithm,
    idleTimeoutMs: context.bodyIdleTimeoutMs,
  });
  const part = await context.store.putPart(upload, partNumber, payload.body, async () => {
    const digests = payload.digests();
    if (upload.checksumAlgorithm !== undefined && digests.checksum?.algorithm !== upload.checksumAlgorithm) {
      throw new ApiError(
        "InvalidRequest",
        400,
        `Checksum Type mismatch occurred, expected checksum Type: ${upload.checksumAlgorithm.toLowerCase()}, actual checksum Type: ${digests.checksum?.algorithm.toLowerCase() ?? "none"}`,
      );
    }
    return {
      sizeBytes: digests.sizeBytes,
      etag: digests.md5Hex,
      checksum: digests.checksum && { ...digests.checksum, type: "FULL_OBJECT" },
    };
  });
  const headers: Record<string, string> = { etag: quotedEtag(part) };
  if (part.checksum) headers[checksumHeaderName(part.checksum.algorithm)] = part.checksum.valueBase64;
  sendEmpty(response, 200, headers);
}

/**
 * Parses `x-amz-copy-source-range` (`bytes=first-last`, both inclusive and
 * inside the source, as the UploadPartCopy reference requires).
 */
function parseCopySourceRange(value: string | undefined, sizeBytes: number): ByteRange | undefined {
  if (value === undefined) return undefined;
  const match = /^bytes=(\d+)-(\d+)$/.exec(value.trim());
  if (!match) {
    throw invalidArgument(
      "x-amz-copy-source-range",
      value,
      "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
    );
  }
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (start > end || end >= sizeBytes) {
    throw invalidArgument("x-amz-copy-source-range", value, `Range specified is not valid for source object of size: ${sizeBytes}`);
  }
  return { start, end };
}

/** UploadPartCopy: a part whose bytes are a range of an existing object. */
async function uploadPartCopy(
  context: S3Context,
  request: ApiRequest,
  response: ServerResponse,
  upload: UploadRecord,
  partNumber: number,
  copySource: string,
): Promise<void> {
  const sourceRecord = requireCopySource(context, request, parseCopySource(copySource));
  const range = parseCopySourceRange(headerValue(request, "x-amz-copy-source-range"), sourceRecord.sizeBytes);
  const lengthBytes = range === undefined ? sourceRecord.sizeBytes : range.end - range.start + 1;
  if (lengthBytes > MAX_PUT_OBJECT_BYTES) {
    throw new ApiError("InvalidRequest", 400, "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120");
  }

  const md5 = new Md5Transform();
  const hasher = upload.checksumAlgorithm === undefined ? undefined : new ChecksumTransform(upload.checksumAlgorithm);
  const body = lengthBytes === 0 ? Readable.from([]) : await context.store.openObject(sourceRecord, range);
  const part = await context.store.putPart(
    upload,
    partNumber,
    body,
    async () => ({
      sizeBytes: lengthBytes,
      etag: md5.hex,
      checksum: hasher && { algorithm: upload.checksumAlgorithm!, valueBase64: await hasher.digestBase64(), type: "FULL_OBJECT" },
    }),
    hasher ? [md5, hasher] : [md5],
  );
  const result: Record<string, string> = { ETag: quotedEtag(part), LastModified: isoTimestamp(part.lastModifiedMs) };
  if (part.checksum) result[checksumElementName(part.checksum.algorithm)] = part.checksum.valueBase64;
  sendXml(response, "CopyPartResult", result);
}

interface RequestedPart {
  partNumber: number;
  etag: string;
  checksums: Map<ChecksumAlgorithm, string>;
}

function parseCompleteDocument(body: Buffer): RequestedPart[] {
  const document = parseXmlDocument(body, "CompleteMultipartUpload");
  const parts = document.Part;
  if (!Array.isArray(parts) || parts.length === 0) throw malformedXml();
  return parts.map((raw: unknown) => {
    if (typeof raw !== "object" || raw === null) throw malformedXml();
    const element = raw as Record<string, unknown>;
    const partNumberText = textOf(element, "PartNumber")?.trim();
    const etag = textOf(element, "ETag");
    if (partNumberText === undefined || !/^\d+$/.test(partNumberText) || etag === undefined) throw malformedXml();
    const checksums = new Map<ChecksumAlgorithm, string>();
    for (const algorithm of ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const) {
      const value = textOf(element, checksumElementName(algorithm));
      if (value !== undefined) checksums.set(algorithm, value.trim());
    }
    return { partNumber: Number(partNumberText), etag: etag.trim().replace(/^"|"$/g, ""), checksums };
  });
}

function invalidPart(part: RequestedPart): ApiError {
  return new ApiError(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    { details: { UploadId: "", PartNumber: String(part.partNumber), ETag: part.etag } },
  );
}

/** Chooses the stored parts named by the request and checks S3's rules on order, ETags and sizes. */
function selectParts(requested: RequestedPart[], stored: PartRecord[]): PartRecord[] {
  const byNumber = new Map(stored.map((part) => [part.partNumber, part]));
  const chosen: PartRecord[] = [];
  let previousNumber = 0;
  for (const part of requested) {
    if (part.partNumber <= previousNumber) {
      throw new ApiError("InvalidPartOrder", 400, "The list of parts was not in ascending order. Parts must be ordered by part number.");
    }
    previousNumber = part.partNumber;
    const record = byNumber.get(part.partNumber);
    if (!record || record.etag !== part.etag) throw invalidPart(part);
    for (const [algorithm, value] of part.checksums) {
      if (record.checksum && (record.checksum.algorithm !== algorithm || record.checksum.valueBase64 !== value)) throw invalidPart(part);
    }
    chosen.push(record);
  }
  chosen.forEach((record, index) => {
    if (index < chosen.length - 1 && record.sizeBytes < MIN_PART_BYTES) {
      throw new ApiError("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.", {
        details: {
          ProposedSize: String(record.sizeBytes),
          MinSizeAllowed: String(MIN_PART_BYTES),
          PartNumber: String(record.partNumber),
          ETag: quotedEtag(record),
        },
      });
    }
  });
  return chosen;
}

/** A pass-through stream that computes a full-object checksum of what flows through it. */
class ChecksumTransform extends Transform {
  private readonly hasher;

  constructor(algorithm: ChecksumAlgorithm) {
    super();
    this.hasher = createChecksumHasher(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.hasher.update(chunk);
    callback(null, chunk);
  }

  digestBase64(): Promise<string> {
    return this.hasher.digestBase64();
  }
}

export async function completeMultipartUpload(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const upload = requireUpload(context, request, route);
  const body = await readVerifiedPayload(request, MAX_COMPLETE_DOCUMENT_BYTES, { idleTimeoutMs: context.bodyIdleTimeoutMs });
  const requested = parseCompleteDocument(body);
  const parts = selectParts(requested, context.store.metadata.listParts(upload.uploadId));

  // The multipart ETag is the MD5 of the concatenated binary part MD5s, then "-<part count>".
  const etagHash = createHash("md5");
  for (const part of parts) etagHash.update(Buffer.from(part.etag, "hex"));
  const etag = `${etagHash.digest("hex")}-${parts.length}`;

  const algorithm = upload.checksumAlgorithm;
  const record = await context.store.completeUpload(upload, parts, async () => {
    let checksum: StoredChecksum | undefined;
    if (algorithm !== undefined && upload.checksumType === "FULL_OBJECT") {
      // A full-object checksum covers the whole object, so the parts are read once (never copied).
      const hasher = new ChecksumTransform(algorithm);
      await pipeline(await context.store.openParts(parts), hasher, new Writable({ write: (_chunk, _encoding, done) => done() }));
      checksum = { algorithm, valueBase64: await hasher.digestBase64(), type: "FULL_OBJECT" };
    } else if (algorithm !== undefined && parts.every((part) => part.checksum?.algorithm === algorithm)) {
      checksum = {
        algorithm,
        valueBase64: await compositeChecksum(algorithm, parts.map((part) => part.checksum!.valueBase64)),
        type: "COMPOSITE",
      };
    }
    return {
      sizeBytes: parts.reduce((total, part) => total + part.sizeBytes, 0),
      etag,
      headers: upload.headers,
      checksum,
      partsCount: parts.length,
    };
  });
  request.log.debug({ key: upload.key, parts: parts.length }, "multipart upload completed");
  const result: Record<string, unknown> = {
    Location: `/${encodeURIComponent(upload.bucket)}/${upload.key.split("/").map(encodeURIComponent).join("/")}`,
    Bucket: upload.bucket,
    Key: upload.key,
    ETag: quotedEtag(record),
  };
  if (record.checksum) {
    result[checksumElementName(record.checksum.algorithm)] = record.checksum.valueBase64;
    result.ChecksumType = record.checksum.type;
  }
  sendXml(response, "CompleteMultipartUploadResult", result);
}

export async function abortMultipartUpload(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const upload = requireUpload(context, request, route);
  await context.store.abortUpload(upload);
  sendEmpty(response, 204);
}

function parseMax(request: ApiRequest, name: string, limit: number): number {
  const text = queryValue(request, name);
  if (text === undefined) return limit;
  if (!/^\d+$/.test(text)) throw invalidArgument(name, text, `Provided ${name} not an integer or within integer range`);
  return Math.min(Number(text), limit);
}

export async function listParts(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const upload = requireUpload(context, request, route);
  const maxParts = parseMax(request, "max-parts", 1000);
  const markerText = queryValue(request, "part-number-marker") ?? "0";
  if (!/^\d+$/.test(markerText)) throw invalidArgument("part-number-marker", markerText, "Invalid part number marker");
  const marker = Number(markerText);
  const rows = context.store.metadata.listParts(upload.uploadId, marker, maxParts + 1);
  const page = rows.slice(0, maxParts);
  const isTruncated = rows.length > maxParts;
  const owner = ownerOf(context.accountId);
  sendXml(response, "ListPartsResult", {
    Bucket: upload.bucket,
    Key: upload.key,
    UploadId: upload.uploadId,
    PartNumberMarker: marker,
    ...(page.length > 0 ? { NextPartNumberMarker: page[page.length - 1]!.partNumber } : {}),
    MaxParts: maxParts,
    IsTruncated: isTruncated,
    Part: page.map((part) => ({
      PartNumber: part.partNumber,
      LastModified: isoTimestamp(part.lastModifiedMs),
      ETag: quotedEtag(part),
      Size: part.sizeBytes,
      ...(part.checksum ? { [checksumElementName(part.checksum.algorithm)]: part.checksum.valueBase64 } : {}),
    })),
    Initiator: owner,
    Owner: owner,
    StorageClass: "STANDARD",
    ...(upload.checksumAlgorithm ? { ChecksumAlgorithm: upload.checksumAlgorithm, ChecksumType: upload.checksumType } : {}),
  });
}

export async function listMultipartUploads(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  const maxUploads = parseMax(request, "max-uploads", 1000);
  const prefix = queryValue(request, "prefix") ?? "";
  const delimiterText = queryValue(request, "delimiter");
  const delimiter = delimiterText === "" ? undefined : delimiterText;
  const keyMarker = queryValue(request, "key-marker") ?? "";
  const uploadIdMarker = queryValue(request, "upload-id-marker") ?? "";
  const page = listUploadsPage(context, bucket.name, { prefix, delimiter, keyMarker, uploadIdMarker, maxUploads });
  const owner = ownerOf(context.accountId);
  const encode = queryValue(request, "encoding-type") === "url" ? (value: string) => uriEncode(value, true) : (value: string) => value;
  sendXml(response, "ListMultipartUploadsResult", {
    Bucket: bucket.name,
    KeyMarker: encode(keyMarker),
    UploadIdMarker: uploadIdMarker,
    ...(page.isTruncated ? { NextKeyMarker: encode(page.nextKeyMarker), NextUploadIdMarker: page.nextUploadIdMarker } : {}),
    Prefix: encode(prefix),
    ...(delimiter === undefined ? {} : { Delimiter: encode(delimiter) }),
    MaxUploads: maxUploads,
    IsTruncated: page.isTruncated,
    ...(queryValue(request, "encoding-type") === "url" ? { EncodingType: "url" } : {}),
    Upload: page.uploads.map((upload) => ({
      Key: encode(upload.key),
      UploadId: upload.uploadId,
      Initiator: owner,
      Owner: owner,
      StorageClass: "STANDARD",
      Initiated: isoTimestamp(upload.initiatedAtMs),
      ...(upload.checksumAlgorithm ? { ChecksumAlgorithm: upload.checksumAlgorithm, ChecksumType: upload.checksumType } : {}),
    })),
    CommonPrefixes: page.commonPrefixes.map((commonPrefix) => ({ Prefix: encode(commonPrefix) })),
  });
}

interface UploadsQuery {
  prefix: string;
  delimiter: string | undefined;
  keyMarker: string;
  uploadIdMarker: string;
  maxUploads: number;
}

interface UploadsPage {
  uploads: UploadRecord[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextKeyMarker: string;
  nextUploadIdMarker: string;
}

const UPLOAD_SCAN_BATCH = 1000;

/**
 * Lists uploads in byte order of key, then upload id, grouping keys that
 * contain `delimiter` after `prefix` into common prefixes. Uploads and common
 * prefixes both count against `maxUploads`, as in ListObjects.
 */
function listUploadsPage(context: S3Context, bucket: string, query: UploadsQuery): UploadsPage {
  const page: UploadsPage = { uploads: [], commonPrefixes: [], isTruncated: false, nextKeyMarker: "", nextUploadIdMarker: "" };
  const markerBytes = Buffer.from(query.keyMarker, "utf8");
  const prefixBytes = Buffer.from(query.prefix, "utf8");
  let fromKey: Buffer = prefixBytes;
  let fromUploadId = "";
  if (query.keyMarker !== "" && Buffer.compare(markerBytes, prefixBytes) >= 0) {
    fromKey = markerBytes;
    // Without an upload-id-marker, S3 resumes after every upload of key-marker.
    fromUploadId = query.uploadIdMarker === "" ? "\uffff" : query.uploadIdMarker;
  }
  for (;;) {
    const batch = context.store.metadata.listUploads(bucket, fromKey, fromUploadId, UPLOAD_SCAN_BATCH);
    let seeked = false;
    for (const upload of batch) {
      if (!upload.key.startsWith(query.prefix)) return page;
      const isFull = page.uploads.length + page.commonPrefixes.length === query.maxUploads;
      const commonPrefix = commonPrefixOf(upload.key, query.prefix, query.delimiter);
      if (commonPrefix === undefined) {
        if (isFull) {
          page.isTruncated = true;
          return page;
        }
        page.uploads.push(upload);
        page.nextKeyMarker = upload.key;
        page.nextUploadIdMarker = upload.uploadId;
        fromKey = Buffer.from(upload.key, "utf8");
        fromUploadId = upload.uploadId;
        continue;
      }

      const commonPrefixBytes = Buffer.from(commonPrefix, "utf8");
      // A common prefix at or before key-marker was returned on an earlier page.
      if (query.keyMarker === "" || Buffer.compare(commonPrefixBytes, markerBytes) > 0) {
        if (isFull) {
          page.isTruncated = true;
          return page;
        }
        page.commonPrefixes.push(commonPrefix);
        page.nextKeyMarker = commonPrefix;
        page.nextUploadIdMarker = "";
      }
      // Skip every other upload under this common prefix with one seek.
      const successor = prefixSuccessor(commonPrefixBytes);
      if (successor === undefined) return page;
      fromKey = successor;
      fromUploadId = "";
      seeked = true;
      break;
    }
    if (!seeked && batch.length < UPLOAD_SCAN_BATCH) return page;
  }
}

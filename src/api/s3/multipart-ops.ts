import { createHash, randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { Transform } from "node:stream";
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
import { headerValue, ownerOf, queryValue, sendEmpty, type S3Context } from "./context.js";
import { collectStoredHeaders, quotedEtag } from "./object-headers.js";
import { checkDeclaredLength, MAX_PUT_OBJECT_BYTES } from "./object-ops.js";
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
  checkDeclaredLength(request, MAX_PUT_OBJECT_BYTES);
  const payload = openVerifiedPayload(request, { computeAlgorithm: upload.checksumAlgorithm });
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
  const body = await readVerifiedPayload(request, MAX_COMPLETE_DOCUMENT_BYTES);
  const requested = parseCompleteDocument(body);
  const parts = selectParts(requested, context.store.metadata.listParts(upload.uploadId));

  // The multipart ETag is the MD5 of the concatenated binary part MD5s, then "-<part count>".
  const etagHash = createHash("md5");
  for (const part of parts) etagHash.update(Buffer.from(part.etag, "hex"));
  const etag = `${etagHash.digest("hex")}-${parts.length}`;

  const algorithm = upload.checksumAlgorithm;
  const fullObject = algorithm !== undefined && upload.checksumType === "FULL_OBJECT" ? new ChecksumTransform(algorithm) : undefined;
  const record = await context.store.completeUpload(upload, parts, fullObject ? [fullObject] : [], async () => {
    let checksum: StoredChecksum | undefined;
    if (algorithm !== undefined && fullObject) {
      checksum = { algorithm, valueBase64: await fullObject.digestBase64(), type: "FULL_OBJECT" };
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
  request.log.debug({ bucket: upload.bucket, key: upload.key, parts: parts.length }, "multipart upload completed");
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
  const keyMarker = queryValue(request, "key-marker") ?? "";
  const uploadIdMarker = queryValue(request, "upload-id-marker") ?? "";
  // NOTE: the delimiter parameter is ignored; uploads are listed flat under the prefix.
  const uploads: UploadRecord[] = [];
  let fromKey = Buffer.from(keyMarker, "utf8");
  // Without an upload-id-marker, S3 resumes after every upload of key-marker.
  let fromUploadId = uploadIdMarker;
  if (keyMarker !== "" && uploadIdMarker === "") fromUploadId = "\uffff";
  let isTruncated = false;
  for (;;) {
    const batch = context.store.metadata.listUploads(bucket.name, fromKey, fromUploadId, 1000);
    for (const upload of batch) {
      if (!upload.key.startsWith(prefix)) continue;
      if (uploads.length === maxUploads) {
        isTruncated = true;
        break;
      }
      uploads.push(upload);
    }
    if (isTruncated || batch.length < 1000) break;
    const last = batch[batch.length - 1]!;
    fromKey = Buffer.from(last.key, "utf8");
    fromUploadId = last.uploadId;
  }
  const owner = ownerOf(context.accountId);
  const last = uploads[uploads.length - 1];
  sendXml(response, "ListMultipartUploadsResult", {
    Bucket: bucket.name,
    KeyMarker: keyMarker,
    UploadIdMarker: uploadIdMarker,
    ...(isTruncated && last ? { NextKeyMarker: last.key, NextUploadIdMarker: last.uploadId } : {}),
    Prefix: prefix,
    MaxUploads: maxUploads,
    IsTruncated: isTruncated,
    Upload: uploads.map((upload) => ({
      Key: upload.key,
      UploadId: upload.uploadId,
      Initiator: owner,
      Owner: owner,
      StorageClass: "STANDARD",
      Initiated: isoTimestamp(upload.initiatedAtMs),
      ...(upload.checksumAlgorithm ? { ChecksumAlgorithm: upload.checksumAlgorithm, ChecksumType: upload.checksumType } : {}),
    })),
  });
}

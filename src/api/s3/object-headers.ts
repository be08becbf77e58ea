import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { ApiError } from "../errors.js";
import type { ObjectRecord, StoredHeaders } from "../../store/metadata.js";
import { checksumHeaderName } from "../../store/checksums.js";
import { storeErrors } from "../../store/errors.js";

/** Headers stored with an object exactly as sent and returned on GET and HEAD. */
const STORED_HEADERS = [
  "content-type",
  "cache-control",
  "content-disposition",
  "content-language",
  "expires",
  "x-amz-website-redirect-location",
];

/** S3 limits user-defined metadata to 2 KB, counting names and values ("Working with object metadata"). */
const MAX_USER_METADATA_BYTES = 2048;

/** The Content-Type S3 gives an object stored without one. */
export const DEFAULT_CONTENT_TYPE = "binary/octet-stream";

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/**
 * Collects the headers to store with a new object: the standard ones,
 * Content-Encoding without the `aws-chunked` transfer coding, and x-amz-meta-*.
 */
export function collectStoredHeaders(headers: IncomingHttpHeaders): StoredHeaders {
  const stored: StoredHeaders = {};
  for (const name of STORED_HEADERS) {
    const value = single(headers, name);
    if (value !== undefined) stored[name] = value;
  }
  stored["content-type"] ??= DEFAULT_CONTENT_TYPE;
  const encoding = single(headers, "content-encoding");
  if (encoding !== undefined) {
    const codings = encoding
      .split(",")
      .map((coding) => coding.trim())
      .filter((coding) => coding !== "" && coding.toLowerCase() !== "aws-chunked");
    if (codings.length > 0) stored["content-encoding"] = codings.join(",");
  }
  let metadataBytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith("x-amz-meta-") || value === undefined) continue;
    const text = Array.isArray(value) ? value.join(",") : value;
    stored[name] = text;
    metadataBytes += Buffer.byteLength(name.slice("x-amz-meta-".length)) + Buffer.byteLength(text);
  }
  if (metadataBytes > MAX_USER_METADATA_BYTES) {
    throw new ApiError("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.", {
      details: { MaxSizeAllowed: String(MAX_USER_METADATA_BYTES), Size: String(metadataBytes) },
    });
  }
  return stored;
}

/** Response header overrides of GetObject and the header each one replaces. */
export const RESPONSE_OVERRIDES: Record<string, string> = {
  "response-content-type": "content-type",
  "response-content-language": "content-language",
  "response-expires": "expires",
  "response-cache-control": "cache-control",
  "response-content-disposition": "content-disposition",
  "response-content-encoding": "content-encoding",
};

export function quotedEtag(record: { etag: string }): string {
  return `"${record.etag}"`;
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** Sets the headers shared by GetObject and HeadObject responses. */
export function setObjectHeaders(
  response: ServerResponse,
  record: ObjectRecord,
  overrides: Record<string, string>,
  includeChecksum: boolean,
): void {
  for (const [name, value] of Object.entries(record.headers)) response.setHeader(name, value);
  for (const [name, value] of Object.entries(overrides)) response.setHeader(name, value);
  response.setHeader("etag", quotedEtag(record));
  response.setHeader("last-modified", httpDate(record.lastModifiedMs));
  response.setHeader("accept-ranges", "bytes");
  if (record.partsCount !== undefined) response.setHeader("x-amz-mp-parts-count", String(record.partsCount));
  if (includeChecksum && record.checksum) {
    response.setHeader(checksumHeaderName(record.checksum.algorithm), record.checksum.valueBase64);
    response.setHeader("x-amz-checksum-type", record.checksum.type);
  }
}

function normalizeEtag(value: string): string {
  return value.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
}

/** Returns whether an If-Match / If-None-Match list matches the ETag. */
export function etagListMatches(list: string, etag: string): boolean {
  return list.split(",").some((item) => item.trim() === "*" || normalizeEtag(item) === etag);
}

function parseHttpDateMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Evaluates GetObject and HeadObject preconditions in the order of RFC 9110
 * section 13.2.2: If-Match, else If-Unmodified-Since (412), then If-None-Match,
 * else If-Modified-Since (304). Returns "not-modified" or undefined.
 */
export function evaluateReadPreconditions(
  headers: IncomingHttpHeaders,
  record: ObjectRecord,
  prefix = "",
): "not-modified" | undefined {
  const ifMatch = single(headers, `${prefix}if-match`);
  const ifNoneMatch = single(headers, `${prefix}if-none-match`);
  const ifModifiedSince = parseHttpDateMs(single(headers, `${prefix}if-modified-since`));
  const ifUnmodifiedSince = parseHttpDateMs(single(headers, `${prefix}if-unmodified-since`));
  // HTTP dates have one-second resolution.
  const lastModifiedSeconds = Math.floor(record.lastModifiedMs / 1000);

  if (ifMatch !== undefined) {
    if (!etagListMatches(ifMatch, record.etag)) throw storeErrors.preconditionFailed(`${prefix}If-Match`);
  } else if (ifUnmodifiedSince !== undefined && lastModifiedSeconds > Math.floor(ifUnmodifiedSince / 1000)) {
    throw storeErrors.preconditionFailed(`${prefix}If-Unmodified-Since`);
  }
  if (ifNoneMatch !== undefined) {
    if (etagListMatches(ifNoneMatch, record.etag)) return "not-modified";
  } else if (ifModifiedSince !== undefined && lastModifiedSeconds <= Math.floor(ifModifiedSince / 1000)) {
    return "not-modified";
  }
  return undefined;
}

/**
 * Parses a single byte range (RFC 9110 section 14.1.2). Returns undefined to
 * serve the whole object when the header is absent, malformed or lists several
 * ranges, and raises InvalidRange when the range starts past the end.
 */
export function parseRange(header: string | undefined, sizeBytes: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  const invalid = (): ApiError =>
    new ApiError("InvalidRange", 416, "The requested range is not satisfiable", {
      details: { RangeRequested: header, ActualObjectSize: String(sizeBytes) },
      headers: { "content-range": `bytes */${sizeBytes}` },
    });
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0 || sizeBytes === 0) throw invalid();
    return { start: Math.max(0, sizeBytes - suffix), end: sizeBytes - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? sizeBytes - 1 : Math.min(Number(match[2]), sizeBytes - 1);
  if (match[2] !== "" && Number(match[2]) < start) return undefined;
  if (start >= sizeBytes) throw invalid();
  return { start, end };
}

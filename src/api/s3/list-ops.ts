import type { ServerResponse } from "node:http";
import type { ApiRequest } from "../context.js";
import { ApiError } from "../errors.js";
import { uriEncode } from "../auth/sigv4.js";
import { listObjects, type ListObjectsPage } from "../../store/listing.js";
import type { ObjectRecord } from "../../store/metadata.js";
import { ownerOf, queryValue, type S3Context } from "./context.js";
import { quotedEtag } from "./object-headers.js";
import type { S3Route } from "./router.js";
import { isoTimestamp, sendXml } from "./xml.js";

/** S3 returns at most 1000 keys per page. */
const MAX_KEYS_LIMIT = 1000;

function invalidArgument(name: string, value: string, message: string): ApiError {
  return new ApiError("InvalidArgument", 400, message, { details: { ArgumentName: name, ArgumentValue: value } });
}

interface ListParameters {
  prefix: string;
  delimiter: string | undefined;
  maxKeys: number;
  encodeUrl: boolean;
}

function listParameters(request: ApiRequest): ListParameters {
  const maxKeysText = queryValue(request, "max-keys");
  let maxKeys = MAX_KEYS_LIMIT;
  if (maxKeysText !== undefined) {
    if (!/^\d+$/.test(maxKeysText)) throw invalidArgument("max-keys", maxKeysText, "Provided max-keys not an integer or within integer range");
    maxKeys = Math.min(Number(maxKeysText), MAX_KEYS_LIMIT);
  }
  const encodingType = queryValue(request, "encoding-type");
  if (encodingType !== undefined && encodingType !== "url") {
    throw invalidArgument("encoding-type", encodingType, "Invalid Encoding Method specified in Request");
  }
  const delimiter = queryValue(request, "delimiter");
  return {
    prefix: queryValue(request, "prefix") ?? "",
    delimiter: delimiter === "" ? undefined : delimiter,
    maxKeys,
    encodeUrl: encodingType === "url",
  };
}

/** Encodes a key-like value for `encoding-type=url`: every byte but unreserved characters and `/`. */
function encoder(enabled: boolean): (value: string) => string {
  return enabled ? (value) => uriEncode(value, true) : (value) => value;
}

function contents(records: ObjectRecord[], encode: (value: string) => string, owner: object | undefined): object[] {
  return records.map((record) => ({
    Key: encode(record.key),
    LastModified: isoTimestamp(record.lastModifiedMs),
    ETag: quotedEtag(record),
    ...(record.checksum ? { ChecksumAlgorithm: record.checksum.algorithm, ChecksumType: record.checksum.type } : {}),
    Size: record.sizeBytes,
    ...(owner ? { Owner: owner } : {}),
    StorageClass: "STANDARD",
  }));
}

function commonPrefixes(page: ListObjectsPage, encode: (value: string) => string): object[] {
  return page.commonPrefixes.map((prefix) => ({ Prefix: encode(prefix) }));
}

export async function listObjectsV2(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  const parameters = listParameters(request);
  const continuationToken = queryValue(request, "continuation-token");
  const startAfter = queryValue(request, "start-after");
  let resumeAfter = startAfter;
  if (continuationToken !== undefined) {
    const decoded = Buffer.from(continuationToken, "base64url").toString("utf8");
    if (continuationToken === "" || !decoded.startsWith("k:")) {
      throw invalidArgument("continuation-token", continuationToken, "The continuation token provided is incorrect");
    }
    resumeAfter = decoded.slice(2);
  }
  const page = listObjects(context.store.metadata, bucket.name, {
    prefix: parameters.prefix,
    delimiter: parameters.delimiter,
    maxKeys: parameters.maxKeys,
    startAfter: resumeAfter,
  });
  const encode = encoder(parameters.encodeUrl);
  const fetchOwner = queryValue(request, "fetch-owner") === "true";
  const result: Record<string, unknown> = {
    Name: bucket.name,
    Prefix: encode(parameters.prefix),
    ...(parameters.delimiter === undefined ? {} : { Delimiter: encode(parameters.delimiter) }),
    MaxKeys: parameters.maxKeys,
    KeyCount: page.objects.length + page.commonPrefixes.length,
    IsTruncated: page.isTruncated,
    ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
    ...(page.isTruncated && page.lastItem !== undefined
      ? { NextContinuationToken: Buffer.from(`k:${page.lastItem}`, "utf8").toString("base64url") }
      : {}),
    ...(startAfter === undefined ? {} : { StartAfter: encode(startAfter) }),
    ...(parameters.encodeUrl ? { EncodingType: "url" } : {}),
    Contents: contents(page.objects, encode, fetchOwner ? ownerOf(context.accountId) : undefined),
    CommonPrefixes: commonPrefixes(page, encode),
  };
  sendXml(response, "ListBucketResult", result);
}

export async function listObjectsV1(context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route): Promise<void> {
  const bucket = context.store.requireBucket(route.bucket!);
  const parameters = listParameters(request);
  const marker = queryValue(request, "marker");
  const page = listObjects(context.store.metadata, bucket.name, {
    prefix: parameters.prefix,
    delimiter: parameters.delimiter,
    maxKeys: parameters.maxKeys,
    startAfter: marker === "" ? undefined : marker,
  });
  const encode = encoder(parameters.encodeUrl);
  // S3 returns NextMarker only when a delimiter is given; clients otherwise resume from the last key.
  const nextMarker =
    page.isTruncated && parameters.delimiter !== undefined && page.lastItem !== undefined ? { NextMarker: encode(page.lastItem) } : {};
  const result: Record<string, unknown> = {
    Name: bucket.name,
    Prefix: encode(parameters.prefix),
    Marker: encode(marker ?? ""),
    ...nextMarker,
    MaxKeys: parameters.maxKeys,
    ...(parameters.delimiter === undefined ? {} : { Delimiter: encode(parameters.delimiter) }),
    IsTruncated: page.isTruncated,
    ...(parameters.encodeUrl ? { EncodingType: "url" } : {}),
    Contents: contents(page.objects, encode, ownerOf(context.accountId)),
    CommonPrefixes: commonPrefixes(page, encode),
  };
  sendXml(response, "ListBucketResult", result);
}

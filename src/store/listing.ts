import type { MetadataStore, ObjectRecord } from "./metadata.js";

export interface ListObjectsQuery {
  prefix: string;
  delimiter: string | undefined;
  maxKeys: number;
  /** List only keys after this one (ListObjectsV2 start-after or continuation, ListObjects marker). */
  startAfter: string | undefined;
}

export interface ListObjectsPage {
  objects: ObjectRecord[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned, from which the next page starts. */
  lastItem: string | undefined;
}

const SCAN_BATCH = 1000;

/** Returns the smallest byte string greater than every string that starts with `bytes`, or undefined. */
export function prefixSuccessor(bytes: Buffer): Buffer | undefined {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0xff) end -= 1;
  if (end === 0) return undefined;
  const out = Buffer.from(bytes.subarray(0, end));
  out[end - 1] = out[end - 1]! + 1;
  return out;
}

/**
 * Lists a bucket in UTF-8 byte order of keys, as S3 does, grouping keys that
 * contain `delimiter` after `prefix` into common prefixes. Keys and common
 * prefixes both count against `maxKeys`. A common prefix at or before
 * `startAfter` is skipped whole, so a page that ended on a common prefix does
 * not repeat it.
 */
export function listObjects(metadata: MetadataStore, bucket: string, query: ListObjectsQuery): ListObjectsPage {
  const prefixBytes = Buffer.from(query.prefix, "utf8");
  const upperBound = query.prefix === "" ? undefined : prefixSuccessor(prefixBytes);
  const afterBytes = query.startAfter === undefined ? undefined : Buffer.from(query.startAfter, "utf8");

  let cursor: Buffer | undefined = prefixBytes;
  let inclusive = true;
  if (afterBytes !== undefined && Buffer.compare(afterBytes, prefixBytes) >= 0) {
    cursor = afterBytes;
    inclusive = false;
  }

  const page: ListObjectsPage = { objects: [], commonPrefixes: [], isTruncated: false, lastItem: undefined };
  let count = 0;
  while (cursor !== undefined) {
    const rows = metadata.scanObjects(bucket, cursor, inclusive, upperBound, SCAN_BATCH);
    if (rows.length === 0) break;
    let hitCommonPrefix = false;
    for (const row of rows) {
      if (count >= query.maxKeys) {
        page.isTruncated = true;
        return page;
      }
      const commonPrefix = commonPrefixOf(row.key, query.prefix, query.delimiter);
      if (commonPrefix === undefined) {
        page.objects.push(row);
        page.lastItem = row.key;
        count += 1;
        cursor = Buffer.from(row.key, "utf8");
        inclusive = false;
        continue;
      }
      const commonPrefixBytes = Buffer.from(commonPrefix, "utf8");
      if (afterBytes === undefined || Buffer.compare(commonPrefixBytes, afterBytes) > 0) {
        page.commonPrefixes.push(commonPrefix);
        page.lastItem = commonPrefix;
        count += 1;
      }
      // Skip every other key under this common prefix with one seek.
      cursor = prefixSuccessor(commonPrefixBytes);
      inclusive = true;
      hitCommonPrefix = true;
      break;
    }
    if (!hitCommonPrefix && rows.length < SCAN_BATCH) break;
    if (cursor !== undefined && upperBound !== undefined && Buffer.compare(cursor, upperBound) >= 0) break;
  }
  return page;
}

/** Returns the common prefix a key rolls up into: up to and including the first delimiter after `prefix`. */
export function commonPrefixOf(key: string, prefix: string, delimiter: string | undefined): string | undefined {
  if (delimiter === undefined || delimiter === "") return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  if (at < 0) return undefined;
  return key.slice(0, at + delimiter.length);
}

import { createHash } from "node:crypto";

/**
 * The on-disk form of one cache entry, in one file:
 *
 *   magic "PORTICO\x01" (8 bytes) | metadata length (uint32 BE) | metadata JSON | body | SHA-256 (32 bytes)
 *
 * The digest covers everything before it, so a torn or bit-flipped file
 * fails verification and is treated as a miss.
 */

export const MAGIC = Buffer.from("PORTICO\x01", "latin1");
export const DIGEST_BYTES = 32;
const PREFIX_BYTES = MAGIC.length + 4;

/** The fields the disk tier stores about an entry besides its body. */
export interface DiskMetadata {
  key: string;
  /** The key without the Vary secondary key, so the Vary index can be rebuilt on start. */
  primaryKey: string;
  varyNames: string[];
  distributionId: string;
  invalidationPaths: string[];
  status: number;
  originHeaders: string[];
  responseAtMs: number;
  initialAgeSeconds: number;
  ttlSeconds: number;
  staleAtMs: number;
  staleWhileRevalidateSeconds: number;
  staleIfErrorSeconds: number | null;
  mustRevalidate: boolean;
  bodyBytes: number;
  storedAtMs: number;
}

/** Returns the header part of a file: magic, length and metadata. */
export function encodeHead(metadata: DiskMetadata): Buffer {
  const json = Buffer.from(JSON.stringify(metadata), "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, length, json]);
}

/** Parses the head of a file; undefined when the bytes are not a valid head. */
export function decodeHead(bytes: Buffer): { metadata: DiskMetadata; bodyOffset: number } | undefined {
  if (bytes.length < PREFIX_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const length = bytes.readUInt32BE(MAGIC.length);
  if (bytes.length < PREFIX_BYTES + length) return undefined;
  try {
    const metadata = JSON.parse(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + length).toString("utf8")) as DiskMetadata;
    if (typeof metadata.key !== "string" || typeof metadata.bodyBytes !== "number") return undefined;
    return { metadata, bodyOffset: PREFIX_BYTES + length };
  } catch {
    return undefined;
  }
}

/** Returns the head length a metadata length implies, to read just enough of a file. */
export function headLength(prefix: Buffer): number | undefined {
  if (prefix.length < PREFIX_BYTES || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  return PREFIX_BYTES + prefix.readUInt32BE(MAGIC.length);
}

export const HEAD_PREFIX_BYTES = PREFIX_BYTES;

/** Verifies a whole file's digest and returns its metadata and body, or undefined when corrupt. */
export function decodeVerified(file: Buffer): { metadata: DiskMetadata; body: Buffer } | undefined {
  if (file.length < PREFIX_BYTES + DIGEST_BYTES) return undefined;
  const content = file.subarray(0, file.length - DIGEST_BYTES);
  const digest = file.subarray(file.length - DIGEST_BYTES);
  if (!createHash("sha256").update(content).digest().equals(digest)) return undefined;
  const head = decodeHead(content);
  if (head === undefined) return undefined;
  const body = content.subarray(head.bodyOffset);
  if (body.length !== head.metadata.bodyBytes) return undefined;
  return { metadata: head.metadata, body };
}

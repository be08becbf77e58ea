import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { pipeline, Transform, type TransformCallback } from "node:stream";
import { join } from "node:path";
import type { CachedResponse } from "../cache/entry.js";
import { DiskTier, type DiskMetadata, type DiskStreamTarget } from "../cache/disk.js";
import type { VaryIndex } from "../cache/vary.js";
import type { Logger } from "../common/logger.js";
import { DIGEST_BYTES } from "../cache/disk-format.js";
import { purgedSince, type EdgeContext } from "./context.js";
import { headerIn } from "./headers.js";

/** A headers policy tag no policy has, so the first hit of a loaded entry rebuilds its header block. */
const UNBUILT_TAG = "\u0000unbuilt";

/** Returns the disk metadata of a memory entry. */
export function diskMetadataOf(entry: CachedResponse, primaryKey: string, varyNames: readonly string[]): DiskMetadata {
  return {
    key: entry.key,
    primaryKey,
    varyNames: [...varyNames],
    distributionId: entry.distributionId,
    invalidationPaths: entry.invalidationPaths,
    status: entry.status,
    originHeaders: entry.originHeaders,
    responseAtMs: entry.responseAtMs,
    initialAgeSeconds: entry.initialAgeSeconds,
    ttlSeconds: entry.ttlSeconds,
    staleAtMs: entry.staleAtMs,
    staleWhileRevalidateSeconds: entry.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: entry.staleIfErrorSeconds ?? null,
    mustRevalidate: entry.mustRevalidate,
    bodyBytes: entry.body.length,
    storedAtMs: Date.now(),
  };
}

/** Writes a stored memory entry to the disk tier in the background. */
export function persistEntry(context: EdgeContext, entry: CachedResponse, primaryKey: string, varyNames: readonly string[]): void {
  const disk = context.disk;
  if (disk === undefined) return;
  const write = disk.write(diskMetadataOf(entry, primaryKey, varyNames), entry.body);
  context.pendingWrites.add(write);
  void write.finally(() => context.pendingWrites.delete(write));
}

/**
 * Rebuilds a memory entry from disk. An entry written before this process
 * started may predate an invalidation the edge never received, so it is
 * marked stale and must-revalidate: it is served only after the origin
 * confirms it with a 304.
 */
export function entryFromDisk(context: EdgeContext, metadata: DiskMetadata, body: Buffer): CachedResponse {
  const unconfirmed = metadata.storedAtMs < context.startedAtMs;
  const lastModified = headerIn(metadata.originHeaders, "last-modified");
  return {
    key: metadata.key,
    distributionId: metadata.distributionId,
    invalidationPaths: metadata.invalidationPaths,
    status: metadata.status,
    originHeaders: metadata.originHeaders,
    body,
    etag: headerIn(metadata.originHeaders, "etag"),
    lastModified,
    lastModifiedMs: lastModified === undefined ? Number.NaN : Date.parse(lastModified),
    responseAtMs: metadata.responseAtMs,
    initialAgeSeconds: metadata.initialAgeSeconds,
    ttlSeconds: metadata.ttlSeconds,
    staleAtMs: unconfirmed ? 0 : metadata.staleAtMs,
    staleWhileRevalidateSeconds: metadata.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: metadata.staleIfErrorSeconds ?? undefined,
    mustRevalidate: unconfirmed || metadata.mustRevalidate,
    headersPolicyTag: UNBUILT_TAG,
    hitHeaders: [],
    sizeBytes: body.length + 512,
  };
}

/** Drops a disk entry that a purge should have removed but that was published after it ran. */
function escapedPurge(context: EdgeContext, metadata: DiskMetadata): boolean {
  if (!purgedSince(context, metadata.distributionId, metadata.invalidationPaths, metadata.storedAtMs)) return false;
  void context.disk?.delete(metadata.key);
  return true;
}

/** The result of a disk lookup: a whole entry now in memory, or a large one to stream from its file. */
export type DiskLookup =
  | { kind: "entry"; entry: CachedResponse }
  | { kind: "stream"; target: DiskStreamTarget }
  | undefined;

/** Looks a key up on disk. Entries small enough for memory are verified, promoted and returned whole. */
export async function lookupDisk(context: EdgeContext, key: string): Promise<DiskLookup> {
  const disk = context.disk;
  if (disk === undefined) return undefined;
  const bodyBytes = disk.bodyBytesOf(key);
  if (bodyBytes === undefined) return undefined;
  if (bodyBytes > context.maxObjectBytes) {
    const target = await disk.streamTarget(key);
    if (target === undefined || escapedPurge(context, target.metadata)) return undefined;
    // As for small entries, one written before this start may predate a missed invalidation:
    // it is stale and must be revalidated before it is served.
    if (target.metadata.storedAtMs < context.startedAtMs) {
      target.metadata = { ...target.metadata, staleAtMs: 0, mustRevalidate: true };
    }
    return { kind: "stream", target };
  }
  const read = await disk.read(key);
  if (read === undefined || escapedPurge(context, read.metadata)) return undefined;
  const entry = entryFromDisk(context, read.metadata, read.body);
  context.memory.put(entry);
  return { kind: "entry", entry };
}

/**
 * Strips a disk file down to its body while hashing every byte, and fails
 * the stream when the trailing SHA-256 does not match. The last byte of the
 * body waits for that check, so a corrupt large entry never reaches a viewer
 * whole: the response ends short of its length and the connection closes.
 */
export class VerifyingBodyStream extends Transform {
  private readonly hash = createHash("sha256");
  private offset = 0;
  private tail = Buffer.alloc(0);

  constructor(
    private readonly bodyOffset: number,
    private readonly onCorrupt: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // The last HELD_BYTES seen wait: they may be the digest and the body's last byte.
    const data = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    const keep = Math.min(HELD_BYTES, data.length);
    const ready = data.subarray(0, data.length - keep);
    this.tail = Buffer.from(data.subarray(data.length - keep));
    this.hash.update(ready);
    this.pushBody(ready);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const rest = this.tail.subarray(0, Math.max(0, this.tail.length - DIGEST_BYTES));
    const digest = this.tail.subarray(rest.length);
    this.hash.update(rest);
    if (digest.length !== DIGEST_BYTES || !this.hash.digest().equals(digest)) {
      this.onCorrupt();
      callback(new Error("disk cache entry failed verification"));
      return;
    }
    this.pushBody(rest);
    callback();
  }

  /** Pushes the part of the next file bytes that belongs to the body, skipping the head. */
  private pushBody(bytes: Buffer): void {
    const start = this.offset;
    this.offset += bytes.length;
    const from = Math.max(0, this.bodyOffset - start);
    if (from < bytes.length) this.push(bytes.subarray(from));
  }
}

/** File bytes the verifier holds back until the end: the digest and one byte of the body. */
const HELD_BYTES = DIGEST_BYTES + 1;

function ignoreError(): void {}

/** Opens the body of a large disk entry: verified when whole, a plain byte slice for one range. */
export function openDiskBody(
  context: EdgeContext,
  target: DiskStreamTarget,
  range: { start: number; end: number } | undefined,
): NodeJS.ReadableStream & import("node:stream").Readable {
  if (range !== undefined) {
    // NOTE: a range read is not verified, since the digest covers the whole file.
    return createReadStream(target.path, { start: target.bodyOffset + range.start, end: target.bodyOffset + range.end });
  }
  const verifier = new VerifyingBodyStream(target.bodyOffset, () => {
    context.log.warn({ key: target.metadata.key, path: target.path }, "disk cache entry failed verification; removed it");
    void context.disk?.delete(target.metadata.key);
  });
  // pipeline() carries a read error to the verifier, and closes the file when a viewer that
  // left destroys the verifier, which pipe() would leave open and paused.
  pipeline(createReadStream(target.path), verifier, ignoreError);
  return verifier;
}

/**
 * Opens the disk tier under `<dataDir>/cache/<folder>` when the budget is
 * above zero, and seeds the Vary index from the entries it finds. Each edge
 * worker passes a folder of its own slot, because two processes must never
 * index and evict one folder, and a restarted worker must find its files.
 */
export async function openDiskTier(
  dataDir: string,
  folder: string,
  capacityBytes: number | undefined,
  vary: VaryIndex,
  log: Logger,
): Promise<DiskTier | undefined> {
  if (capacityBytes === undefined || capacityBytes <= 0) return undefined;
  const disk = await DiskTier.open({ directory: join(dataDir, "cache", folder), capacityBytes, log });
  for (const [primaryKey, names] of disk.varyOnOpen) vary.record(primaryKey, names, {});
  disk.varyOnOpen.clear();
  return disk;
}

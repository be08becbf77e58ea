import type { Readable } from "node:stream";
import { join } from "node:path";
import type { CachedResponse } from "../cache/entry.js";
import { DiskTier, type DiskMetadata, type DiskStreamTarget } from "../cache/disk.js";
import type { VaryIndex } from "../cache/vary.js";
import type { Logger } from "../common/logger.js";
import { VerifiedBodyReader } from "../cache/disk-read.js";
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
 * Opens the body of a large disk entry, whole or one range of it. Each
 * block is checked against its checksum before any of its bytes go out. A
 * corrupt entry is removed, and its response ends short of its length.
 */
export function openDiskBody(
  context: EdgeContext,
  target: DiskStreamTarget,
  range: { start: number; end: number } | undefined,
): Readable {
  const reader = new VerifiedBodyReader(target, range?.start ?? 0, range?.end ?? target.bodyBytes - 1, () => {
    if (target.peer === true) {
      // The worker whose tier contains the file removes it when it reads it next.
      context.log.warn({ key: target.metadata.key, path: target.path }, "another worker's disk cache entry failed verification");
      return;
    }
    context.log.warn({ key: target.metadata.key, path: target.path }, "disk cache entry failed verification; removed it");
    void context.disk?.delete(target.metadata.key);
  });
  // A response that needs no body, such as a HEAD or a 304, destroys the reader unread. Opening
  // a file removed meanwhile then fails with no consumer listening, which would end the process.
  // Consumers that read the body still get the error.
  reader.on("error", ignoreError);
  return reader;
}

function ignoreError(): void {}

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

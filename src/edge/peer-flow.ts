import { refreshOf, streamTargetAt, type DiskStreamTarget, type WriteProgress } from "../cache/disk.js";
import type { CachedResponse } from "../cache/entry.js";
import { MAX_SHARED_BODY_BYTES, type FetchEnd, type Found, type PeerGrant, type SharedEntry, type SharedFile, type SharedFill } from "../cluster/peers.js";
import { purgeEpoch, purgedSince, type EdgeContext } from "./context.js";
import { diskMetadataOf, entryFromDisk } from "./disk-flow.js";
import type { StreamingFill } from "./fill-follow.js";

/** The edge's view of its sibling workers; absent when the edge runs alone. */
export interface PeerCache {
  acquire(key: string): Promise<PeerGrant>;
  release(key: string, fetched?: FetchEnd, borrowed?: boolean): void;
  shareFill(key: string, fill: Omit<SharedFill, "id">, progress: WriteProgress): void;
  follow(fill: SharedFill): WriteProgress;
  supersede(key: string, id: number): void;
  hold(key: string, file: SharedFile): void;
  find(key: string, stale?: boolean): Promise<Found>;
}

/**
 * Returns this worker's entry for a primary key in the form another worker
 * can store. The entry must be small enough to cross the IPC pipe, and fresh
 * unless `allowStale`. An entry with several Vary variants is never returned,
 * because the requesting worker's variant is not known here. A stale entry
 * still lets that worker revalidate with a conditional request, or serve it
 * under stale-if-error when the origin fails.
 */
export function sharedEntryOf(context: EdgeContext, key: string, allowStale = false): SharedEntry | undefined {
  if (context.vary.varies(key)) return undefined;
  const entry = context.memory.peek(key);
  if (entry === undefined || entry.body.length > MAX_SHARED_BODY_BYTES) return undefined;
  if (!allowStale && Date.now() >= entry.staleAtMs) return undefined;
  // The receiver checks its purges against the time the origin's response arrived.
  return { metadata: { ...diskMetadataOf(entry, key, []), storedAtMs: entry.responseAtMs }, body: entry.body };
}

/**
 * Stores an entry that another worker fetched, unless a purge that this
 * worker applied since `epochAtAcquire`, or since the entry's response
 * arrived, could have covered it. Returns the stored entry.
 */
export function acceptSharedEntry(context: EdgeContext, shared: SharedEntry, epochAtAcquire: number): CachedResponse | undefined {
  const metadata = shared.metadata;
  if (purgeEpoch(context, metadata.distributionId) !== epochAtAcquire) return undefined;
  if (purgedSince(context, metadata.distributionId, metadata.invalidationPaths, metadata.storedAtMs)) return undefined;
  const body = Buffer.isBuffer(shared.body)
    ? shared.body
    : Buffer.from(shared.body.buffer, shared.body.byteOffset, shared.body.byteLength);
  const entry = entryFromDisk(context, metadata, body);
  if (!context.memory.put(entry)) return undefined;
  context.vary.record(metadata.primaryKey, [], {});
  return entry;
}

/**
 * Returns this worker's large entry for a primary key, fresh or stale, as a
 * file another worker can read. It is one in this worker's disk tier, or
 * another worker's file that this one keeps in use. Entries with Vary
 * variants, and entries from before this process started, which wait for
 * revalidation, are never returned.
 */
export async function sharedFileOf(context: EdgeContext, key: string): Promise<SharedFile | undefined> {
  const disk = context.disk;
  if (context.vary.varies(key) || context.memory.peek(key) !== undefined) return undefined;
  const bodyBytes = disk?.bodyBytesOf(key);
  if (disk === undefined || bodyBytes === undefined) {
    const kept = context.peerFiles.get(key);
    if (kept === undefined || Date.now() >= kept.untilMs) return undefined;
    const metadata = kept.file.metadata;
    return purgedSince(context, metadata.distributionId, metadata.invalidationPaths, metadata.storedAtMs) ? undefined : kept.file;
  }
  if (bodyBytes <= context.maxObjectBytes) return undefined;
  const target = await disk.streamTarget(key);
  if (target === undefined) return undefined;
  const metadata = target.metadata;
  if (metadata.storedAtMs < context.startedAtMs) return undefined;
  if (purgedSince(context, metadata.distributionId, metadata.invalidationPaths, metadata.storedAtMs)) return undefined;
  return { metadata, path: target.path, bodyOffset: target.bodyOffset, inode: target.inode };
}

/**
 * Returns the stream target of another worker's file, once its head has
 * passed its check and it is still the file that worker described. Returns
 * undefined when a purge that this worker applied since `epochAtAcquire`, or
 * since the entry was stored, could have covered it.
 */
export async function acceptSharedFile(
  context: EdgeContext,
  shared: SharedFile,
  epochAtAcquire: number,
): Promise<DiskStreamTarget | undefined> {
  const metadata = shared.metadata;
  if (purgeEpoch(context, metadata.distributionId) !== epochAtAcquire) return undefined;
  if (purgedSince(context, metadata.distributionId, metadata.invalidationPaths, metadata.storedAtMs)) return undefined;
  const found = await streamTargetAt(shared.path, metadata.key);
  if (found === undefined || found.inode !== shared.inode || found.bodyBytes !== metadata.bodyBytes) return undefined;
  // The holder's metadata carries what a revalidation changed since the file was written.
  return { ...found, metadata, peer: true };
}

/** Returns whether a purge that this worker applied since `epochAtAcquire`, or since the fetch began, could cover another worker's write. */
export function fillPurged(context: EdgeContext, shared: SharedFill, epochAtAcquire: number): boolean {
  if (purgeEpoch(context, shared.distributionId) !== epochAtAcquire) return true;
  return purgedSince(context, shared.distributionId, shared.invalidationPaths, shared.startedAtMs);
}

/** Returns the fields of a write in progress that other workers need to read it. */
export function sharedFillOf(fill: StreamingFill): Omit<SharedFill, "id"> {
  const { progress, purgeEpoch: _purgeEpoch, abort: _abort, ...response } = fill;
  return {
    ...response,
    path: progress.path,
    bodyOffset: progress.bodyOffset,
    bodyBytes: progress.bodyBytes,
    writtenBodyBytes: progress.writtenBodyBytes,
  };
}

/**
 * Returns another worker's write in progress as a fill this worker's
 * requests read, unless a purge that this worker applied since
 * `epochAtAcquire`, or since the fetch began, could have covered it.
 */
export function acceptSharedFill(context: EdgeContext, peers: PeerCache, shared: SharedFill, epochAtAcquire: number): StreamingFill | undefined {
  if (fillPurged(context, shared, epochAtAcquire)) return undefined;
  const progress = peers.follow(shared);
  const { id: _id, path: _path, bodyOffset: _bodyOffset, bodyBytes: _bodyBytes, writtenBodyBytes: _written, ...response } = shared;
  return {
    ...response,
    progress,
    purgeEpoch: epochAtAcquire,
    // Readers here stop; the writer's fetch goes on for the worker that owns it.
    abort: () => progress.end(false),
  };
}

/**
 * Takes the freshness that another worker gave this worker's file of `key`,
 * when it is still the same file and the new freshness lasts longer. That
 * worker revalidated the file, or serves it while the origin fails and keeps
 * it in use until then.
 */
export async function holdOwnFile(context: EdgeContext, key: string, file: SharedFile): Promise<void> {
  const target = await context.disk?.streamTarget(key);
  if (target === undefined || target.inode !== file.inode || file.metadata.staleAtMs <= target.metadata.staleAtMs) return;
  // The other worker's metadata is this file's, with the headers of a 304 or the windows of a hold.
  context.disk?.refresh(key, refreshOf(file.metadata));
}

/**
 * How long this worker reads another worker's fresh file that a miss was handed without asking
 * the primary again. Each use still checks the file's head, inode and purges.
 */
const PEER_FILE_HOLD_MS = 10_000;
/** Maximum number of other workers' files kept; the oldest go first. */
const MAX_PEER_FILES = 1_024;

/**
 * Keeps another worker's file that a miss was handed, for the requests that
 * waited for that miss and the misses that follow, or until `untilMs` for a
 * stale copy served because the origin failed.
 */
export function holdPeerFile(
  context: EdgeContext,
  key: string,
  file: SharedFile,
  epochAtAcquire: number,
  untilMs = Date.now() + PEER_FILE_HOLD_MS,
): void {
  const peerFiles = context.peerFiles;
  peerFiles.delete(key);
  peerFiles.set(key, { file, purgeEpoch: epochAtAcquire, untilMs });
  if (peerFiles.size <= MAX_PEER_FILES) return;
  const nowMs = Date.now();
  for (const [other, recent] of peerFiles) if (recent.untilMs <= nowMs) peerFiles.delete(other);
  while (peerFiles.size > MAX_PEER_FILES) peerFiles.delete(peerFiles.keys().next().value!);
}

/** Returns the fresh file of another worker that a miss of `key` was just handed, checked again. */
export async function heldPeerFile(context: EdgeContext, key: string): Promise<DiskStreamTarget | undefined> {
  const recent = context.peerFiles.get(key);
  if (recent === undefined) return undefined;
  const nowMs = Date.now();
  if (recent.untilMs <= nowMs || nowMs >= recent.file.metadata.staleAtMs) {
    context.peerFiles.delete(key);
    return undefined;
  }
  return acceptSharedFile(context, recent.file, recent.purgeEpoch);
}

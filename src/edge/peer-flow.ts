import type { CachedResponse } from "../cache/entry.js";
import { MAX_SHARED_BODY_BYTES, type FetchEnd, type PeerGrant, type SharedEntry } from "../cluster/peers.js";
import { purgeEpoch, purgedSince, type EdgeContext } from "./context.js";
import { diskMetadataOf, entryFromDisk } from "./disk-flow.js";

/** The edge's view of its sibling workers; absent when the edge runs alone. */
export interface PeerCache {
  acquire(key: string): Promise<PeerGrant>;
  release(key: string, fetched?: FetchEnd): void;
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

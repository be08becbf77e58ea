import type { Logger } from "../common/logger.js";
import type { DiskTier } from "../cache/disk.js";
import type { CacheLock } from "../cache/lock.js";
import type { MemoryTier } from "../cache/memory.js";
import type { VaryIndex } from "../cache/vary.js";
import type { MetricsSink } from "../metrics/types.js";
import type { EdgeIdentity } from "./headers.js";
import type { StreamingFill } from "./fill-follow.js";
import type { PeerCache } from "./peer-flow.js";
import type { SharedFile } from "../cluster/peers.js";
import type { RoutingTable } from "./routing.js";

/** State shared by every request an edge handles. */
export interface EdgeContext {
  edgeId: string;
  identity: EdgeIdentity;
  routing: RoutingTable;
  memory: MemoryTier;
  /** The Vary names of each primary key, for secondary-key lookups. */
  vary: VaryIndex;
  lock: CacheLock;
  /** The disk tier, when the edge has a disk budget. */
  disk: DiskTier | undefined;
  /** Disk writes in flight, awaited when the edge closes. */
  pendingWrites: Set<Promise<boolean>>;
  /** Large objects being written to the disk tier as they arrive, by primary key, which later misses read as they grow. */
  fills: Map<string, StreamingFill>;
  /**
   * Large entries in other workers' disk tiers that a miss here was handed,
   * by primary key, which this worker reads for a while without asking the
   * primary again.
   */
  peerFiles: Map<string, RecentPeerFile>;
  /** When this edge process started; disk entries from before it are revalidated before use. */
  startedAtMs: number;
  /**
   * Recent purges per distribution. A disk write that was published after a
   * purge it should have been subject to is caught here: a disk entry stored
   * before a matching purge is never served.
   */
  recentPurges: Map<string, RecentPurge[]>;
  /** Bytes of origin bodies being buffered before they are stored, bounded across all requests. */
  inFlight: ByteBudget;
  /** Bodies larger than this are not kept in memory: they stream to the viewer, and to the disk tier when there is one. */
  maxObjectBytes: number;
  /** The port viewers reach HTTPS on, for `redirect-to-https` Location headers. */
  httpsPort: () => number;
  /**
   * A counter per distribution that each invalidation and deletion bumps. A
   * fetch that started under an older value does not store its response,
   * since the response may predate the purge.
   */
  purgeEpochs: Map<string, number>;
  /**
   * Objects whose origin sent slices that did not add up (a 206 claiming a
   * length the object does not have, or slices of different versions), by
   * cache key, with when they may be sliced again. Until then, their range
   * requests fetch the whole object.
   */
  unsliceable: Map<string, number>;
  metrics: MetricsSink;
  /** The sibling workers that share misses and entries, when the edge runs in several workers. */
  peers: PeerCache | undefined;
  /** Whether every distribution's requests go to an access log, Logging or not (a local log folder). */
  logsAllRequests: boolean;
  log: Logger;
}

/** A byte budget shared by concurrent requests; a reservation that does not fit is refused, never queued. */
export class ByteBudget {
  private usedBytes = 0;

  constructor(readonly limitBytes: number) {}

  get used(): number {
    return this.usedBytes;
  }

  reserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.limitBytes) return false;
    this.usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
  }
}

export interface RecentPeerFile {
  file: SharedFile;
  /** The distribution's purge counter when the file was handed over. */
  purgeEpoch: number;
  /** Until when the waiting requests may take it, in epoch milliseconds. */
  untilMs: number;
}

export interface RecentPurge {
  atMs: number;
  matches: (invalidationPath: string) => boolean;
}

/** How long and how many purges are remembered per distribution for late disk writes. */
const RECENT_PURGE_WINDOW_MS = 60 * 60 * 1000;
const MAX_RECENT_PURGES = 1000;

export function rememberPurge(context: EdgeContext, distributionId: string, matches: RecentPurge["matches"]): void {
  const nowMs = Date.now();
  const kept = (context.recentPurges.get(distributionId) ?? []).filter((purge) => nowMs - purge.atMs < RECENT_PURGE_WINDOW_MS);
  kept.push({ atMs: nowMs, matches });
  context.recentPurges.set(distributionId, kept.slice(-MAX_RECENT_PURGES));
}

/** Returns whether an entry stored at `storedAtMs` was purged later by a purge it escaped. */
export function purgedSince(
  context: EdgeContext,
  distributionId: string,
  invalidationPaths: readonly string[],
  storedAtMs: number,
): boolean {
  const purges = context.recentPurges.get(distributionId);
  if (purges === undefined) return false;
  return purges.some((purge) => purge.atMs >= storedAtMs && invalidationPaths.some(purge.matches));
}

export function purgeEpoch(context: EdgeContext, distributionId: string): number {
  return context.purgeEpochs.get(distributionId) ?? 0;
}

export function bumpPurgeEpoch(context: EdgeContext, distributionId: string): void {
  context.purgeEpochs.set(distributionId, purgeEpoch(context, distributionId) + 1);
}

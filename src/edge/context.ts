import type { Logger } from "../common/logger.js";
import type { CacheLock } from "../cache/lock.js";
import type { MemoryTier } from "../cache/memory.js";
import type { VaryIndex } from "../cache/vary.js";
import type { MetricsSink } from "../metrics/types.js";
import type { EdgeIdentity } from "./headers.js";
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
  /** Bodies larger than this stream to the viewer and are not cached. */
  maxObjectBytes: number;
  /** The port viewers reach HTTPS on, for `redirect-to-https` Location headers. */
  httpsPort: () => number;
  /**
   * A counter per distribution that each invalidation and deletion bumps. A
   * fetch that started under an older value does not store its response,
   * since the response may predate the purge.
   */
  purgeEpochs: Map<string, number>;
  metrics: MetricsSink;
  log: Logger;
}

export function purgeEpoch(context: EdgeContext, distributionId: string): number {
  return context.purgeEpochs.get(distributionId) ?? 0;
}

export function bumpPurgeEpoch(context: EdgeContext, distributionId: string): void {
  context.purgeEpochs.set(distributionId, purgeEpoch(context, distributionId) + 1);
}

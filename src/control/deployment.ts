import type { Logger } from "../common/logger.js";
import type { ClusterMessage, ControlChannel, EdgeAck } from "../cluster/types.js";
import type { ControlStore, InvalidationStatus } from "./store.js";

export type DistributionStatus = "InProgress" | "Deployed";

/**
 * Tracks what the edges have applied. A distribution is Deployed once every
 * live edge reports its current version (with no live edge, it counts as
 * deployed). An invalidation is Completed once every edge that was live when
 * it was published has acknowledged it or has left the cluster. The set of
 * edges that still owe an acknowledgement is persisted with the invalidation.
 */
export class DeploymentTracker {
  /** Invalidation id -> edges that still owe an acknowledgement. */
  private readonly pendingInvalidations = new Map<string, Set<string>>();
  private stopListening: (() => void) | undefined;
  /** Publications go out one after another, in the order their changes were committed. */
  private publishQueue: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: ControlChannel,
    private readonly store: ControlStore,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopListening = this.bus.onAck((ack) => this.handleAck(ack));
    // The edges that owed an invalidation before a restart get it again when they join, so their
    // disk tiers are purged before they serve and the invalidation can complete.
    for (const invalidation of this.store.inProgressInvalidations()) {
      this.pendingInvalidations.set(invalidation.id, new Set(invalidation.pendingEdgeIds));
      this.bus.owe(invalidation.pendingEdgeIds, {
        type: "invalidation.created",
        distributionId: invalidation.distributionId,
        invalidationId: invalidation.id,
        paths: invalidation.paths,
      });
    }
  }

  stop(): void {
    this.stopListening?.();
    this.stopListening = undefined;
  }

  /**
   * Publishes `message` after every earlier publication. Call it right after
   * the change is committed, without awaiting anything in between, so that
   * the bus receives versions in commit order.
   */
  publish(message: ClusterMessage): Promise<void> {
    const published = this.publishQueue.then(() => this.bus.publish(message));
    this.publishQueue = published.catch((error: unknown) => {
      // The change is stored; `start()` republishes it on the next start.
      this.log.error({ err: error, messageType: message.type }, "publishing to the cluster failed");
    });
    return this.publishQueue;
  }

  /** Waits until every publication queued so far has been handed to the bus. */
  async flush(): Promise<void> {
    await this.publishQueue;
  }

  distributionStatus(distributionId: string, version: number): DistributionStatus {
    for (const edge of this.bus.liveEdges()) {
      const applied = edge.appliedVersions.get(distributionId);
      if (applied === undefined || applied < version) return "InProgress";
    }
    return "Deployed";
  }

  /** The edges an invalidation published now must hear from. */
  liveEdgeIds(): string[] {
    return this.bus.liveEdges().map((edge) => edge.edgeId);
  }

  /** Starts waiting for `edgeIds` to acknowledge an invalidation; call before publishing it. */
  trackInvalidation(invalidationId: string, edgeIds: string[]): void {
    if (edgeIds.length > 0) this.pendingInvalidations.set(invalidationId, new Set(edgeIds));
  }

  forgetInvalidations(invalidationIds: string[]): void {
    for (const id of invalidationIds) this.pendingInvalidations.delete(id);
  }

  /**
   * Returns an invalidation's status, first dropping edges that have left
   * since it was published: they stop counting.
   */
  invalidationStatus(invalidationId: string, stored: InvalidationStatus): InvalidationStatus {
    if (stored === "Completed") return stored;
    const pending = this.pendingInvalidations.get(invalidationId);
    if (pending === undefined) {
      this.store.setInvalidationProgress(invalidationId, "Completed", []);
      return "Completed";
    }
    const live = new Set(this.liveEdgeIds());
    let changed = false;
    for (const edgeId of pending) {
      if (!live.has(edgeId)) {
        pending.delete(edgeId);
        changed = true;
      }
    }
    if (changed) this.settleInvalidation(invalidationId, pending);
    return pending.size === 0 ? "Completed" : "InProgress";
  }

  private settleInvalidation(invalidationId: string, pending: Set<string>): void {
    if (pending.size === 0) {
      this.pendingInvalidations.delete(invalidationId);
      this.store.setInvalidationProgress(invalidationId, "Completed", []);
      this.log.info({ invalidationId }, "invalidation completed");
    } else {
      this.store.setInvalidationProgress(invalidationId, "InProgress", [...pending]);
    }
  }

  private handleAck(ack: EdgeAck): void {
    if (ack.type === "distribution.applied") {
      this.log.debug({ edgeId: ack.edgeId, distributionId: ack.distributionId, version: ack.version }, "edge applied distribution");
      return;
    }
    if (ack.type !== "invalidation.completed") return;
    const pending = this.pendingInvalidations.get(ack.invalidationId);
    if (pending === undefined || !pending.delete(ack.edgeId)) return;
    try {
      this.settleInvalidation(ack.invalidationId, pending);
    } catch (error) {
      // The store may be closed during shutdown; the status is refreshed on read.
      this.log.warn({ err: error, invalidationId: ack.invalidationId }, "cannot record an invalidation acknowledgement");
    }
  }
}

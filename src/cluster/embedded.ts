import type { Logger } from "../common/logger.js";
import type {
  ClusterMessage,
  ControlChannel,
  InvalidationMessage,
  DistributionSnapshot,
  EdgeAck,
  EdgeChannel,
  EdgeMembership,
  EdgeMessageHandler,
  EdgeStatus,
} from "./types.js";

/** Delay before a message whose handler failed is delivered again. */
const REDELIVERY_DELAY_MS = 500;
/** Invalidations kept for one edge that left before applying them; the oldest go first. */
const MAX_OWED_PER_EDGE = 10_000;

interface EdgeSubscriber {
  status: {
    edgeId: string;
    joinedAtMs: number;
    lastSeenAtMs: number;
    appliedVersions: Map<string, number>;
  };
  handler: EdgeMessageHandler;
  queue: ClusterMessage[];
  draining: boolean;
  left: boolean;
  /** Messages of the replay at join that the handler has yet to apply. */
  replayLeft: number;
  /** Resolves the membership's `caughtUp` once `replayLeft` reaches 0. */
  onCaughtUp: () => void;
}

/**
 * The in-process cluster channel of `portico up`. It keeps the latest
 * snapshot of each distribution, as a key-value bucket would, and hands each
 * edge every message in publish order through a queue of its own, so a slow
 * edge never reorders or blocks another. Acknowledgements follow each
 * handler's success; a failed handler gets the same message again. Like a
 * durable consumer per edge id, it keeps the invalidations that an edge
 * left without applying, and delivers them when an edge of that id joins.
 */
export class EmbeddedBus implements ControlChannel, EdgeChannel {
  private readonly snapshots = new Map<string, DistributionSnapshot>();
  private readonly edges = new Map<string, EdgeSubscriber>();
  private readonly ackListeners = new Set<(ack: EdgeAck) => void>();
  /** Edge id -> invalidations it owes but has not applied, for when it joins. */
  private readonly owed = new Map<string, InvalidationMessage[]>();

  constructor(private readonly log: Logger) {}

  async publish(message: ClusterMessage): Promise<void> {
    if (message.type === "distribution.updated") {
      this.snapshots.set(message.snapshot.id, message.snapshot);
    } else if (message.type === "distribution.deleted") {
      this.snapshots.delete(message.distributionId);
    }
    for (const edge of this.edges.values()) this.enqueue(edge, message);
  }

  onAck(listener: (ack: EdgeAck) => void): () => void {
    this.ackListeners.add(listener);
    return () => this.ackListeners.delete(listener);
  }

  liveEdges(): EdgeStatus[] {
    return [...this.edges.values()].map((edge) => edge.status);
  }

  owe(edgeIds: readonly string[], message: InvalidationMessage): void {
    for (const edgeId of edgeIds) {
      const live = this.edges.get(edgeId);
      if (live !== undefined) this.enqueue(live, message);
      else this.keepOwed(edgeId, [message]);
    }
  }

  private keepOwed(edgeId: string, messages: InvalidationMessage[]): void {
    const owedSoFar = this.owed.get(edgeId) ?? [];
    // An invalidation owed twice, as one republished at start and kept at leave, is applied once.
    const known = new Set(owedSoFar.map((message) => message.invalidationId));
    for (const message of messages) {
      if (known.has(message.invalidationId)) continue;
      known.add(message.invalidationId);
      owedSoFar.push(message);
    }
    this.owed.set(edgeId, owedSoFar.slice(-MAX_OWED_PER_EDGE));
  }

  async join(edgeId: string, handler: EdgeMessageHandler): Promise<EdgeMembership> {
    if (this.edges.has(edgeId)) throw new Error(`edge ${edgeId} has already joined`);
    const now = Date.now();
    let onCaughtUp = (): void => {};
    const caughtUp = new Promise<void>((resolve) => (onCaughtUp = resolve));
    const edge: EdgeSubscriber = {
      status: { edgeId, joinedAtMs: now, lastSeenAtMs: now, appliedVersions: new Map() },
      handler,
      queue: [],
      draining: false,
      left: false,
      replayLeft: 0,
      onCaughtUp,
    };
    const owed = this.owed.get(edgeId) ?? [];
    this.owed.delete(edgeId);
    edge.replayLeft = this.snapshots.size + owed.length;
    this.edges.set(edgeId, edge);
    this.log.info({ edgeId, owedInvalidations: owed.length }, "edge joined");
    if (edge.replayLeft === 0) onCaughtUp();
    for (const snapshot of this.snapshots.values()) {
      this.enqueue(edge, { type: "distribution.updated", snapshot });
    }
    for (const message of owed) this.enqueue(edge, message);
    return {
      edgeId,
      caughtUp,
      leave: async () => {
        edge.left = true;
        const unapplied = edge.queue.filter((message): message is InvalidationMessage => message.type === "invalidation.created");
        if (unapplied.length > 0) this.keepOwed(edgeId, unapplied);
        edge.queue.length = 0;
        this.edges.delete(edgeId);
        this.log.info({ edgeId }, "edge left");
      },
    };
  }

  private enqueue(edge: EdgeSubscriber, message: ClusterMessage): void {
    edge.queue.push(message);
    if (!edge.draining) void this.drain(edge);
  }

  private async drain(edge: EdgeSubscriber): Promise<void> {
    edge.draining = true;
    try {
      while (!edge.left && edge.queue.length > 0) {
        const message = edge.queue[0]!;
        try {
          await edge.handler(message);
        } catch (error) {
          this.log.warn(
            { edgeId: edge.status.edgeId, messageType: message.type, err: error },
            "edge failed to apply a cluster message; delivering it again",
          );
          await new Promise((resolve) => setTimeout(resolve, REDELIVERY_DELAY_MS).unref());
          continue;
        }
        edge.queue.shift();
        edge.status.lastSeenAtMs = Date.now();
        if (edge.replayLeft > 0 && --edge.replayLeft === 0) edge.onCaughtUp();
        const ack = this.acknowledge(edge, message);
        for (const listener of this.ackListeners) {
          try {
            listener(ack);
          } catch (error) {
            this.log.error({ err: error, ack }, "acknowledgement listener failed");
          }
        }
      }
    } finally {
      edge.draining = false;
    }
  }

  private acknowledge(edge: EdgeSubscriber, message: ClusterMessage): EdgeAck {
    const edgeId = edge.status.edgeId;
    switch (message.type) {
      case "distribution.updated":
        edge.status.appliedVersions.set(message.snapshot.id, message.snapshot.version);
        return {
          type: "distribution.applied",
          edgeId,
          distributionId: message.snapshot.id,
          version: message.snapshot.version,
        };
      case "distribution.deleted":
        edge.status.appliedVersions.delete(message.distributionId);
        return {
          type: "distribution.removed",
          edgeId,
          distributionId: message.distributionId,
          version: message.version,
        };
      case "invalidation.created":
        return {
          type: "invalidation.completed",
          edgeId,
          distributionId: message.distributionId,
          invalidationId: message.invalidationId,
        };
    }
  }
}

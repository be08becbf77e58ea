import type { Worker } from "node:cluster";
import type { Logger } from "../common/logger.js";
import { applyRollup, type EdgeRollup, type EdgeRollupSink, type RollupTargets } from "../metrics/edge-rollup.js";
import type { ClusterMessage, EdgeChannel, EdgeMembership, EdgeMessageHandler } from "./types.js";

/**
 * The cluster channel between the primary process of `portico up` and its
 * edge workers, over node:cluster's IPC pipe. Each worker joins the real
 * channel in the primary as a member of its own, so a deploy or an
 * invalidation is acknowledged only once every worker has applied it, and
 * a worker that restarts gets the current state replayed like any edge.
 */

/** Messages on the IPC pipe; `kind` keeps them apart from other users of the pipe. */
export type IpcMessage =
  | { kind: "bus.join"; edgeId: string }
  | { kind: "bus.caught-up" }
  | { kind: "bus.leave" }
  | { kind: "bus.deliver"; sequence: number; message: ClusterMessage }
  | { kind: "bus.result"; sequence: number; error: string | undefined }
  | { kind: "metrics.rollup"; rollup: EdgeRollup }
  | { kind: "metrics.flush"; sequence: number }
  | { kind: "metrics.flushed"; sequence: number };

function isIpcMessage(value: unknown): value is IpcMessage {
  return typeof value === "object" && value !== null && typeof (value as { kind?: unknown }).kind === "string";
}

/** The worker's side of the channel: joins through the primary and applies what it delivers. */
export class IpcEdgeChannel implements EdgeChannel {
  constructor(
    /** Appended to the edge id, so each worker is a member of its own. */
    private readonly memberSuffix: string,
    private readonly log: Logger,
  ) {}

  async join(edgeId: string, handler: EdgeMessageHandler): Promise<EdgeMembership> {
    const memberId = `${edgeId}${this.memberSuffix}`;
    let onCaughtUp = (): void => {};
    const caughtUp = new Promise<void>((resolve) => (onCaughtUp = resolve));
    const onMessage = (value: unknown): void => {
      if (!isIpcMessage(value)) return;
      if (value.kind === "bus.caught-up") {
        onCaughtUp();
        return;
      }
      if (value.kind !== "bus.deliver") return;
      const { sequence, message } = value;
      handler(message).then(
        () => send({ kind: "bus.result", sequence, error: undefined }),
        (error: unknown) => {
          this.log.warn({ err: error, messageType: message.type }, "worker failed to apply a cluster message");
          send({ kind: "bus.result", sequence, error: error instanceof Error ? error.message : String(error) });
        },
      );
    };
    process.on("message", onMessage);
    send({ kind: "bus.join", edgeId: memberId });
    return {
      edgeId: memberId,
      caughtUp,
      leave: async () => {
        process.off("message", onMessage);
        send({ kind: "bus.leave" });
      },
    };
  }
}

function send(message: IpcMessage): void {
  if (process.send !== undefined && process.connected) process.send(message);
}

/** How often a worker sends its metrics rollup to the primary. */
export const ROLLUP_INTERVAL_MS = 1_000;

/**
 * Sends a worker's metrics rollup to the primary every ROLLUP_INTERVAL_MS,
 * and at once when the primary requests it before a read, so a query right after
 * a response already counts it. The hit path itself never touches IPC.
 */
export class RollupSender {
  private readonly timer: NodeJS.Timeout;
  private readonly onMessage = (value: unknown): void => {
    if (!isIpcMessage(value) || value.kind !== "metrics.flush") return;
    this.flush();
    send({ kind: "metrics.flushed", sequence: value.sequence });
  };

  constructor(private readonly sink: EdgeRollupSink) {
    this.timer = setInterval(() => this.flush(), ROLLUP_INTERVAL_MS);
    this.timer.unref();
    process.on("message", this.onMessage);
  }

  flush(): void {
    if (this.sink.empty) return;
    send({ kind: "metrics.rollup", rollup: this.sink.take() });
  }

  close(): void {
    clearInterval(this.timer);
    process.off("message", this.onMessage);
    this.flush();
  }
}

/** How long the primary waits for a worker's reply to a flush before it reads without it. */
const FLUSH_TIMEOUT_MS = 1_000;

/** The primary's handle on one worker's relay. */
export interface WorkerRelay {
  /**
   * Resolves once the worker has sent everything it recorded so far, or after FLUSH_TIMEOUT_MS.
   * Resolves at once for a worker that has not joined the bus yet.
   */
  flushMetrics(): Promise<void>;
}

/**
 * The primary's side for one worker: joins the real channel on the worker's
 * "bus.join", relays each message and settles it with the worker's result, and
 * adds the worker's metrics rollups to the primary's metrics.
 */
export function relayWorker(worker: Worker, bus: EdgeChannel, rollups: RollupTargets, log: Logger): WorkerRelay {
  let membership: Promise<EdgeMembership> | undefined;
  let nextSequence = 1;
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextFlush = 1;
  const flushes = new Map<number, () => void>();
  // A worker listens for flushes before it joins the bus, and records nothing before then.
  let joined = false;

  const leave = (): void => {
    const joined = membership;
    membership = undefined;
    for (const waiter of pending.values()) waiter.reject(new Error("edge worker left before applying the message"));
    pending.clear();
    void joined?.then((member) => member.leave()).catch((error: unknown) => log.error({ err: error }, "edge worker failed to leave"));
  };

  worker.on("message", (value: unknown) => {
    if (!isIpcMessage(value)) return;
    switch (value.kind) {
      case "bus.join":
        joined = true;
        membership = bus.join(value.edgeId, (message) => {
          const sequence = nextSequence++;
          return new Promise<void>((resolve, reject) => {
            if (!worker.isConnected()) {
              reject(new Error("edge worker is gone"));
              return;
            }
            pending.set(sequence, { resolve, reject });
            worker.send({ kind: "bus.deliver", sequence, message } satisfies IpcMessage);
          });
        });
        membership.then(
          async (member) => {
            await member.caughtUp;
            if (worker.isConnected()) worker.send({ kind: "bus.caught-up" } satisfies IpcMessage);
          },
          (error: unknown) => log.error({ err: error, edgeId: value.edgeId }, "edge worker failed to join"),
        );
        return;
      case "bus.result": {
        const waiter = pending.get(value.sequence);
        pending.delete(value.sequence);
        if (value.error === undefined) waiter?.resolve();
        else waiter?.reject(new Error(value.error));
        return;
      }
      case "bus.leave":
        leave();
        return;
      case "metrics.rollup":
        try {
          applyRollup(value.rollup, rollups);
        } catch (error) {
          log.error({ err: error }, "failed to add an edge worker's metrics rollup");
        }
        return;
      case "metrics.flushed":
        flushes.get(value.sequence)?.();
        return;
      default:
        return;
    }
  });
  worker.on("exit", () => {
    leave();
    for (const done of flushes.values()) done();
    flushes.clear();
  });

  return {
    flushMetrics: () => {
      // A worker that is still starting, such as one forked to replace a killed one, has nothing to send.
      if (!joined || !worker.isConnected()) return Promise.resolve();
      const sequence = nextFlush++;
      return new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          flushes.delete(sequence);
          resolve();
        };
        const timer = setTimeout(done, FLUSH_TIMEOUT_MS);
        flushes.set(sequence, done);
        worker.send({ kind: "metrics.flush", sequence } satisfies IpcMessage);
      });
    },
  };
}

import type { Worker } from "node:cluster";
import type { Logger } from "../common/logger.js";
import type { MetricsSink, RequestRecord } from "../metrics/types.js";
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
  | { kind: "bus.leave" }
  | { kind: "bus.deliver"; sequence: number; message: ClusterMessage }
  | { kind: "bus.result"; sequence: number; error: string | undefined }
  | { kind: "metrics.records"; records: RequestRecord[] };

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
    const onMessage = (value: unknown): void => {
      if (!isIpcMessage(value) || value.kind !== "bus.deliver") return;
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

/** Maximum records sent in one IPC message. */
const METRICS_MAX_BATCH = 512;

/**
 * A metrics sink in a worker that sends records to the primary once per
 * turn of the event loop. The hit path never waits on IPC, a busy worker
 * sends many records per message, and a query right after a response
 * already counts it.
 */
export class IpcMetricsSink implements MetricsSink {
  private batch: RequestRecord[] = [];
  private scheduled = false;

  record(entry: RequestRecord): void {
    this.batch.push(entry);
    if (this.batch.length >= METRICS_MAX_BATCH) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.batch.length === 0) return;
    const records = this.batch;
    this.batch = [];
    send({ kind: "metrics.records", records });
  }

  close(): void {
    this.flush();
  }
}

/**
 * The primary's side for one worker: joins the real channel on the worker's
 * "bus.join", relays each message and settles it with the worker's result, and
 * feeds the worker's request records to the metrics sink.
 */
export function relayWorker(worker: Worker, bus: EdgeChannel, metrics: MetricsSink, log: Logger): void {
  let membership: Promise<EdgeMembership> | undefined;
  let nextSequence = 1;
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

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
        membership.catch((error: unknown) => log.error({ err: error, edgeId: value.edgeId }, "edge worker failed to join"));
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
      case "metrics.records":
        for (const record of value.records) metrics.record(record);
        return;
      default:
        return;
    }
  });
  worker.on("exit", leave);
}

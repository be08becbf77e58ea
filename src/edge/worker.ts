import { createLogger, type Logger } from "../common/logger.js";
import { IpcEdgeChannel, RollupSender } from "../cluster/ipc.js";
import { EdgeRollupSink } from "../metrics/edge-rollup.js";
import { startEdge, type LocalEdge } from "./index.js";
import type { WorkerLifecycleMessage } from "./workers.js";

/**
 * Entry point of an edge worker forked by startEdgeWorkers: waits for its
 * options, starts the edge with the IPC channel and metrics sink, and
 * drains and exits on the primary's "edge.close" message or when the primary
 * disconnects it. When the primary dies, node:cluster ends the worker at
 * once, cutting its responses in flight, which frees the listening ports for
 * a restarted primary.
 */
function send(message: WorkerLifecycleMessage): void {
  if (process.send !== undefined && process.connected) process.send(message);
}

let edge: LocalEdge | undefined;
let workerLog: Logger | undefined;
let metrics: RollupSender | undefined;
let stopping = false;

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await edge?.close();
  } catch (error) {
    workerLog?.error({ err: error }, "edge worker failed to close; exiting");
    process.exit(1);
  }
  metrics?.close();
  send({ kind: "edge.closed" });
  process.disconnect?.();
  process.exit(0);
}

// Signals go to the primary, which drains the workers in order; a worker only follows it.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});
process.on("SIGHUP", () => {});
process.on("disconnect", () => void stop());

process.on("message", (message: WorkerLifecycleMessage) => {
  if (message.kind === "edge.close") {
    void stop();
    return;
  }
  if (message.kind !== "edge.start" || edge !== undefined) return;
  const edgeLog = createLogger(message.logLevel).child({ component: "edge", worker: message.workerIndex });
  // startEdge adds the edge id to its own logger, so only this process's other lines get it here.
  const log = edgeLog.child({ edgeId: message.options.edgeId });
  workerLog = log;
  const { logsAllRequests } = message.options;
  // Until the edge has started, no request has been recorded, so the lookup can wait for it.
  const sink = new EdgeRollupSink((distributionId) => logsAllRequests || edge?.logsRequests(distributionId) === true);
  metrics = new RollupSender(sink);
  startEdge({
    ...message.options,
    bus: new IpcEdgeChannel(`/${message.workerIndex}`, log),
    metrics: sink,
    log: edgeLog,
  }).then(
    (started) => {
      edge = started;
      send({ kind: "edge.ready", httpPort: started.httpPort, httpsPort: started.httpsPort });
    },
    (error: unknown) => {
      log.error({ err: error }, "edge worker failed to start");
      send({ kind: "edge.failed", error: error instanceof Error ? error.message : String(error) });
      process.exit(1);
    },
  );
});

send({ kind: "edge.hello" });

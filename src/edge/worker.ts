import { Socket } from "node:net";
import { createLogger, type Logger } from "../common/logger.js";
import { IpcEdgeChannel, RollupSender } from "../cluster/ipc.js";
import { EdgeRollupSink } from "../metrics/edge-rollup.js";
import { WorkerConnectionGate, type BalanceMessage } from "./balance.js";
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

/**
 * Sends a message to the primary, with a socket's connection when there is one, and returns
 * false when the channel is closed or the send fails. The connection goes as its bare handle,
 * which the primary passes on without reading from it. Sent as a socket, node:child_process
 * would wrap it in a socket in the primary that starts reading, so the bytes read there would
 * be lost.
 */
function sendToPrimary(message: BalanceMessage, socket?: Socket): boolean {
  if (process.send === undefined || !process.connected) return false;
  const holder = socket as unknown as
    | { _handle: { close(): void; readStart(): number; readStop(): number; reading?: boolean } | null }
    | undefined;
  const handle = holder?._handle;
  if (holder !== undefined && (handle === null || handle === undefined)) return false;
  // A connection moved between requests has been reading; what arrives from here on stays in the
  // kernel for the worker that takes it over. A new connection has not started reading.
  const reading = handle?.reading === true;
  if (reading) handle!.readStop();
  try {
    // Once the message is written, the kernel keeps the connection for the receiver, so this copy closes.
    process.send(message, handle as never, undefined, (error) => {
      handle?.close();
      if (error !== null && error !== undefined && handle !== undefined) {
        workerLog?.warn({ err: error, kind: message.kind }, "edge worker failed to hand a viewer connection to the primary and closed it");
      }
    });
  } catch (error) {
    workerLog?.warn({ err: error, kind: message.kind }, "edge worker could not message the primary");
    if (reading) handle!.readStart();
    return false;
  }
  if (holder !== undefined) {
    // Detached, the socket is destroyed without closing the connection, and leaves its server's count.
    holder._handle = null;
    socket!.destroy();
  }
  return true;
}

const gate = new WorkerConnectionGate(sendToPrimary);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  gate.close();
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

process.on("message", (message: WorkerLifecycleMessage | BalanceMessage, handle?: unknown) => {
  if (message.kind === "edge.share") {
    gate.setShare(message.share);
    return;
  }
  if (message.kind === "edge.adopt") {
    if (handle === undefined || handle === null) return;
    // A bare connection handle, which starts reading once it is in a socket.
    // `handle` is an option of net.Socket that Node.js's types leave out.
    const socket = new Socket({ handle, readable: true, writable: true } as ConstructorParameters<typeof Socket>[0]);
    if (edge === undefined || stopping) socket.destroy();
    else edge.adopt(message.port, socket);
    return;
  }
  if (message.kind === "edge.close") {
    void stop();
    return;
  }
  if (message.kind !== "edge.start" || edge !== undefined) return;
  if (message.options.reusePort === true) gate.spreadByKernel("http");
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
    connectionGate: gate,
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

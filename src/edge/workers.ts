import cluster, { type Worker } from "node:cluster";
import { createServer, type AddressInfo } from "node:net";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { relayWorker, type WorkerRelay } from "../cluster/ipc.js";
import { PeerCoordinator } from "../cluster/peers.js";
import type { RollupTargets } from "../metrics/edge-rollup.js";
import { ConnectionSpread, type BalanceMessage } from "./balance.js";
import { COLLAPSE_WRITER_TIMEOUT_MS, type Edge, type EdgeOptions } from "./index.js";
import { reusePortAvailable } from "./listen.js";
import { loadOrCreateTls } from "./tls.js";

/**
 * The EdgeOptions a worker receives. The worker makes its own channel,
 * metrics sink and logger; `logsAllRequests` means that every distribution's
 * requests go to an access log, so the worker keeps every record.
 */
export type WorkerEdgeOptions = Omit<EdgeOptions, "bus" | "metrics" | "log" | "logsAllRequests"> & { logsAllRequests: boolean };

/** The edge as run in workers, with the metrics they have not sent yet one call away. */
export interface WorkerEdge extends Edge {
  /** Resolves once every worker has sent the metrics it recorded so far. */
  flushMetrics(): Promise<void>;
  /** The number of workers running now. */
  liveWorkers(): number;
  /** Each worker's open viewer connections as last reported, by worker slot. */
  workerConnections(): Array<[worker: number, open: number]>;
  /** Connections that a worker above its share handed on since the start. */
  handedConnections(): number;
  /** Keys being fetched for the whole edge now, large objects still being written included. */
  sharedFetches(): number;
}

/** Messages between the primary and an edge worker about its lifecycle. */
export type WorkerLifecycleMessage =
  | { kind: "edge.hello" }
  | { kind: "edge.start"; options: WorkerEdgeOptions; workerIndex: number; logLevel: string }
  | { kind: "edge.ready"; httpPort: number; httpsPort: number }
  | { kind: "edge.failed"; error: string }
  | { kind: "edge.close" }
  | { kind: "edge.closed" };

/** The bare handle of a TCP connection that node:child_process passes between processes. */
interface ConnectionHandle {
  close(): void;
}

/** How long close() waits for a worker to drain and exit before it kills it. */
const WORKER_EXIT_TIMEOUT_MS = 15_000;
/** Restarts allowed per worker slot within RESTART_WINDOW_MS; past this a crashing worker stays down. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/** Binds `port` on `host` (0 for any), closes it again, and returns the port bound. */
async function bindOnce(host: string, port: number): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return bound;
}

/** Returns a port that was free a moment ago on `host`. */
function pickFreePort(host: string): Promise<number> {
  return bindOnce(host, 0);
}

/** Throws when `port` on `host` is taken, with the error of a plain bind (EADDRINUSE, EACCES, ...). */
async function assertPortFree(host: string, port: number): Promise<void> {
  await bindOnce(host, port);
}

function workerEntry(): string {
  // Under tsx the sources run as .ts; once built, as .js.
  return fileURLToPath(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
}

/**
 * Starts the edge in `count` node:cluster workers, each with an equal share
 * of the memory cache budget. On the plain HTTP port, each worker listens on
 * a socket of its own bound with SO_REUSEPORT (listen.ts) when the native
 * part is built and `reusePort` is not false. Otherwise, and always on the
 * TLS port, the workers share the primary's listening socket and accept
 * from it directly. The primary creates the
 * TLS material first, so workers never race to create two CAs.
 */
export async function startEdgeWorkers(
  options: Omit<EdgeOptions, "metrics"> & { workers: number; logLevel: string; rollups: RollupTargets; logsAllRequests: boolean },
): Promise<WorkerEdge> {
  const { bus, rollups, log, workers: count, logLevel, ...rest } = options;
  const tls = await loadOrCreateTls(options.dataDir, options.zone, log);
  // node:cluster shares one listening socket per address and port, and would give the HTTP
  // and HTTPS listeners the same socket if both asked for port 0, so free ports are picked here.
  const httpPort = options.httpPort === 0 ? await pickFreePort(options.host) : options.httpPort;
  let httpsPort = options.httpsPort;
  while (httpsPort === 0 || httpsPort === httpPort) httpsPort = await pickFreePort(options.host);
  const reusePort = reusePortAvailable && options.reusePort !== false;
  if (reusePort) {
    // Sockets with SO_REUSEPORT would share a port with another process of this user that bound
    // it the same way, such as a second Portico, so the port is first bound plainly once.
    await assertPortFree(options.host, httpPort);
  }
  const shared: WorkerEdgeOptions = {
    ...rest,
    reusePort,
    httpPort,
    httpsPort,
    memoryCacheBytes: Math.floor(options.memoryCacheBytes / count),
    diskCacheBytes: Math.floor((options.diskCacheBytes ?? 0) / count),
  };
  // `log` is the edge's logger already, whose component is "edge".
  const peers = new PeerCoordinator(COLLAPSE_WRITER_TIMEOUT_MS, log);
  // Without SO_REUSEPORT, each worker accepts from the shared listening sockets itself. With
  // node:cluster's default on Linux, the primary accepts every connection and passes it on over
  // IPC, which made one core the limit on new connections and tied them to the API's event loop.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: workerEntry(), serialization: "advanced" });

  let closing = false;
  const live = new Set<Worker>();
  const spread = new ConnectionSpread();
  const bySlot = new Map<number, Worker>();
  let lastShare = -1;
  // A lone worker has no one to hand connections to.
  const currentShare = (): number => (spread.workerCount > 1 ? spread.share() : Number.MAX_SAFE_INTEGER);
  const announceShare = (): void => {
    const share = currentShare();
    if (share === lastShare) return;
    lastShare = share;
    for (const worker of bySlot.values()) {
      // A worker that is exiting may close its channel while the message is on the way.
      if (worker.isConnected()) worker.send({ kind: "edge.share", share } satisfies BalanceMessage, undefined, () => {});
    }
  };
  /** Passes a connection that worker `from` handed on, as a bare handle never read here, to the worker with the fewest. */
  const handOn = (from: number, message: Extract<BalanceMessage, { kind: "edge.handoff" }>, handle: ConnectionHandle | undefined): void => {
    if (handle === undefined || handle === null) return;
    spread.report(from, message.open, message.adopted);
    const target = closing ? undefined : bySlot.get(spread.pick(from));
    if (target === undefined || !target.isConnected()) {
      handle.close();
      return;
    }
    // Once the message is written, the kernel keeps the connection for the receiver, so this copy closes.
    target.send({ kind: "edge.adopt", port: message.port } satisfies BalanceMessage, handle as never, undefined, (error) => {
      handle.close();
      if (error !== null && error !== undefined) log.warn({ err: error, from }, "could not hand a viewer connection to an edge worker");
    });
  };
  const relays = new Map<Worker, WorkerRelay>();
  let ports: { httpPort: number; httpsPort: number } | undefined;

  /** `restarts` lists the times of this slot's restarts within the last RESTART_WINDOW_MS. */
  const fork = (workerIndex: number, restarts: number[]): Promise<{ httpPort: number; httpsPort: number }> => {
    const worker = cluster.fork();
    live.add(worker);
    relays.set(worker, relayWorker(worker, bus, rollups, log));
    peers.attach(worker);
    const started = new Promise<{ httpPort: number; httpsPort: number }>((resolve, reject) => {
      worker.on("message", (message: WorkerLifecycleMessage) => {
        if (message.kind === "edge.ready") resolve({ httpPort: message.httpPort, httpsPort: message.httpsPort });
        if (message.kind === "edge.failed") reject(new Error(`edge worker ${workerIndex} failed to start: ${message.error}`));
      });
      worker.once("exit", (code) => reject(new Error(`edge worker ${workerIndex} exited with code ${code} while starting`)));
    });
    bySlot.set(workerIndex, worker);
    worker.on("message", (message: BalanceMessage | WorkerLifecycleMessage, handle: unknown) => {
      if (message.kind === "edge.ready") {
        // Connections are passed to a worker only once it serves. One that starts after the
        // others learns the share now, not at the next change.
        spread.report(workerIndex, 0, 0);
        lastShare = -1;
        announceShare();
      } else if (message.kind === "edge.connections") {
        spread.report(workerIndex, message.open, message.adopted);
        announceShare();
      } else if (message.kind === "edge.handoff") {
        handOn(workerIndex, message, handle as ConnectionHandle | undefined);
      }
    });
    // "online" can come before the worker listens for messages, so the worker sends "edge.hello" once it listens.
    worker.on("message", (message: WorkerLifecycleMessage) => {
      if (message.kind !== "edge.hello") return;
      const options: WorkerEdgeOptions = { ...shared, workerSlot: workerIndex };
      worker.send({ kind: "edge.start", options, workerIndex, logLevel } satisfies WorkerLifecycleMessage);
    });
    worker.once("exit", (code, signal) => {
      live.delete(worker);
      relays.delete(worker);
      if (bySlot.get(workerIndex) === worker) {
        bySlot.delete(workerIndex);
        spread.remove(workerIndex);
        announceShare();
      }
      if (closing) return;
      const nowMs = Date.now();
      const recent = restarts.filter((atMs) => nowMs - atMs < RESTART_WINDOW_MS);
      log.error({ workerIndex, code, signal, restarts: recent.length }, "edge worker exited");
      if (recent.length >= MAX_RESTARTS) {
        log.error(
          { workerIndex, restarts: recent.length, windowMs: RESTART_WINDOW_MS, liveWorkers: live.size },
          "edge worker keeps exiting; its slot stays down until Portico restarts",
        );
        return;
      }
      fork(workerIndex, [...recent, nowMs]).catch((error: unknown) => {
        if (!closing) log.error({ err: error, workerIndex }, "edge worker restart failed");
      });
    });
    return started;
  };

  const stopAll = async (): Promise<void> => {
    closing = true;
    const exits = [...live].map(
      (worker) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => worker.process.kill("SIGKILL"), WORKER_EXIT_TIMEOUT_MS);
          worker.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          if (worker.isConnected()) worker.send({ kind: "edge.close" } satisfies WorkerLifecycleMessage);
          else worker.process.kill("SIGTERM");
        }),
    );
    await Promise.all(exits);
  };

  try {
    ports = await fork(1, []);
    await Promise.all(Array.from({ length: count - 1 }, (_, i) => fork(i + 2, [])));
  } catch (error) {
    await stopAll();
    throw error;
  }
  log.info({ workers: count, ...ports }, "edge workers listening");

  let closed: Promise<void> | undefined;
  return {
    httpPort: ports.httpPort,
    httpsPort: ports.httpsPort,
    caCertificatePath: tls.caCertificatePath,
    flushMetrics: async () => {
      await Promise.all([...relays.values()].map((relay) => relay.flushMetrics()));
    },
    liveWorkers: () => live.size,
    workerConnections: () => spread.counts(),
    sharedFetches: () => peers.flightCount,
    handedConnections: () => spread.handedOff,
    close: () => {
      closed ??= stopAll().then(() => log.info("edge workers stopped"));
      return closed;
    },
  };
}

import type { Socket } from "node:net";
import type { Logger } from "../common/logger.js";
import { CacheLock } from "../cache/lock.js";
import { MemoryTier } from "../cache/memory.js";
import { VaryIndex } from "../cache/vary.js";
import type { EdgeChannel, EdgeMembership } from "../cluster/types.js";
import type { MetricsSink } from "../metrics/types.js";
import { OriginPools, type OriginContext } from "../origin/index.js";
import { PeerClient } from "../cluster/peers.js";
import type { ConnectionGate, ViewerPort } from "./balance.js";
import { createClusterHandler } from "./cluster-handler.js";
import { holdOwnFile, sharedEntryOf, sharedFileOf } from "./peer-flow.js";
import { openDiskTier } from "./disk-flow.js";
import { ByteBudget, type EdgeContext } from "./context.js";
import type { ViewerRequest, ViewerResponse } from "./exchange.js";
import { EdgeRequestHandler } from "./handler.js";
import { scavengeOnEventLoopThread } from "./gc.js";
import { edgeIdentity } from "./headers.js";
import { DEFAULT_HTTP1_OPTIONS, Http1Server, type Http1ServerOptions } from "./http1/server.js";
import { RoutingTable } from "./routing.js";
import { SecureEdgeServer } from "./secure-server.js";
import { toSharedBody } from "./shared-body.js";
import { loadOrCreateTls } from "./tls.js";

export interface EdgeOptions {
  edgeId: string;
  dataDir: string;
  /** The DNS zone of distribution domain names; the HTTPS certificate covers `*.<zone>`. */
  zone: string;
  host: string;
  /** 0 picks a free port. */
  httpPort: number;
  /** 0 picks a free port. */
  httpsPort: number;
  bus: EdgeChannel;
  metrics: MetricsSink;
  /** Base URL of the bucket store that S3 origin domains refer to. */
  s3Endpoint: string;
  /** The key that signs origin requests as the CloudFront service principal. */
  serviceCredentials: { accessKeyId: string; secretAccessKey: string };
  memoryCacheBytes: number;
  /** Whether an access log folder takes every distribution's requests; default false. */
  logsAllRequests?: boolean;
  /**
   * The slot of this edge among the workers of `portico up` (1 to N), when
   * it is one: it then shares misses and entries with its siblings through
   * the primary, and keeps its disk tier in a folder of the slot's own.
   */
  workerSlot?: number;
  /** Byte budget of the disk tier under `<dataDir>/cache/<edgeId>`; none when absent or 0. */
  diskCacheBytes?: number;
  log: Logger;
  /** Request size limits, timeouts and the drain timeout; defaults in DEFAULT_HTTP1_OPTIONS. */
  protocol?: {
    limits?: Partial<Http1ServerOptions["limits"]>;
    timeouts?: Partial<Http1ServerOptions["timeouts"]>;
    drainTimeoutMs?: number;
    /** TLS in C (viewer-tls.ts) on the TLS port, by default whenever the addon is built. */
    nativeTls?: boolean;
  };
  /** In an edge worker, spreads new connections over the workers. */
  connectionGate?: ConnectionGate;
  /**
   * In an edge worker: listen on a socket of this worker's own, bound with SO_REUSEPORT to the
   * fixed `httpPort` (listen.ts). The TLS port always listens the usual way. Default false.
   */
  reusePort?: boolean;
}

export interface Edge {
  httpPort: number;
  httpsPort: number;
  /** PEM file of the local CA that signed the HTTPS certificate, for clients to trust. */
  caCertificatePath: string;
  /** Stops accepting connections, drains responses in flight, and leaves the cluster. */
  close(): Promise<void>;
}

/** An edge running in this process. */
export interface LocalEdge extends Edge {
  /** Returns whether the distribution's Logging settings ask for an access log of its requests. */
  logsRequests(distributionId: string): boolean;
  /** Serves a connection that another worker accepted on `port` and handed to this one. */
  adopt(port: ViewerPort, socket: Socket): void;
}

/** Largest body cached whole: an eighth of the memory budget, at most 64 MiB. */
function maxObjectBytesFor(memoryCacheBytes: number): number {
  return Math.min(Math.floor(memoryCacheBytes / 8), 64 * 1024 * 1024);
}

/** Origin bodies buffered at once before they are stored: a quarter of the memory budget, at least one object. */
function inFlightBytesFor(memoryCacheBytes: number): number {
  return Math.max(Math.floor(memoryCacheBytes / 4), maxObjectBytesFor(memoryCacheBytes));
}

/** How long one origin fetch may hold a cache key, and how long others wait on it. */
export const COLLAPSE_WRITER_TIMEOUT_MS = 35_000;
const COLLAPSE_WAITER_TIMEOUT_MS = 30_000;
/** How long a starting edge waits to apply the current distributions before it listens anyway. */
const CATCH_UP_TIMEOUT_MS = 10_000;

/** Starts an edge: TLS material, HTTP and HTTPS listeners, then joins the cluster. */
export async function startEdge(options: EdgeOptions): Promise<LocalEdge> {
  const log = options.log.child({ edgeId: options.edgeId });
  scavengeOnEventLoopThread();
  const tls = await loadOrCreateTls(options.dataDir, options.zone, log);

  let httpsPort = options.httpsPort;
  const vary = new VaryIndex();
  const diskFolder = options.workerSlot === undefined ? options.edgeId : `${options.edgeId}-w${options.workerSlot}`;
  const disk = await openDiskTier(options.dataDir, diskFolder, options.diskCacheBytes, vary, log);
  const context: EdgeContext = {
    edgeId: options.edgeId,
    identity: edgeIdentity(options.edgeId),
    routing: new RoutingTable(),
    memory: new MemoryTier(options.memoryCacheBytes, toSharedBody),
    vary,
    disk,
    pendingWrites: new Set(),
    fills: new Map(),
    peerFiles: new Map(),
    startedAtMs: Date.now(),
    recentPurges: new Map(),
    inFlight: new ByteBudget(inFlightBytesFor(options.memoryCacheBytes)),
    lock: new CacheLock({ writerTimeoutMs: COLLAPSE_WRITER_TIMEOUT_MS, waiterTimeoutMs: COLLAPSE_WAITER_TIMEOUT_MS }),
    maxObjectBytes: maxObjectBytesFor(options.memoryCacheBytes),
    httpsPort: () => httpsPort,
    purgeEpochs: new Map(),
    unsliceable: new Map(),
    metrics: options.metrics,
    logsAllRequests: options.logsAllRequests === true,
    peers: undefined,
    log,
  };
  let peerClient: PeerClient | undefined;
  if (options.workerSlot !== undefined) {
    peerClient = new PeerClient(
      (key) => sharedEntryOf(context, key, true),
      (key) => sharedFileOf(context, key),
      (key, file) => holdOwnFile(context, key, file),
      COLLAPSE_WAITER_TIMEOUT_MS,
      log,
    );
    context.peers = peerClient;
  }
  const pools = new OriginPools();
  const originContext: OriginContext = {
    s3Endpoint: options.s3Endpoint,
    serviceCredentials: options.serviceCredentials,
    pools,
  };

  const handler = new EdgeRequestHandler(context);
  const listener = (request: ViewerRequest, response: ViewerResponse) => handler.handle(request, response);
  const protocolOptions: Http1ServerOptions = {
    limits: { ...DEFAULT_HTTP1_OPTIONS.limits, ...options.protocol?.limits },
    timeouts: { ...DEFAULT_HTTP1_OPTIONS.timeouts, ...options.protocol?.timeouts },
    drainTimeoutMs: options.protocol?.drainTimeoutMs ?? DEFAULT_HTTP1_OPTIONS.drainTimeoutMs,
  };
  const gate = options.connectionGate;
  const httpServer = new Http1Server(listener, protocolOptions, log, gate, options.metrics);
  const httpsServer = new SecureEdgeServer(
    tls,
    options.dataDir,
    listener,
    protocolOptions,
    log,
    gate,
    options.metrics,
    options.protocol?.nativeTls,
  );
  await httpsServer.loadAliases();

  // The edge loads the current distributions before it listens, so that no request gets a 403
  // for a host it is about to serve. A replay that keeps failing is retried after the edge listens.
  let membership: EdgeMembership;
  try {
    membership = await options.bus.join(options.edgeId, createClusterHandler(context, originContext));
  } catch (error) {
    await Promise.all([httpServer.close(), httpsServer.close()]);
    throw error;
  }
  let replayTimer: NodeJS.Timeout | undefined;
  const replayed = await Promise.race([
    membership.caughtUp.then(() => true),
    new Promise<boolean>((resolve) => (replayTimer = setTimeout(() => resolve(false), CATCH_UP_TIMEOUT_MS))),
  ]);
  clearTimeout(replayTimer);
  if (!replayed) {
    log.warn({ timeoutMs: CATCH_UP_TIMEOUT_MS }, "edge has not applied every distribution yet; listening anyway");
  }

  let httpPort: number;
  try {
    httpPort = await httpServer.listen(options.httpPort, options.host, options.reusePort);
    httpsPort = await httpsServer.listen(options.httpsPort, options.host);
  } catch (error) {
    await Promise.all([httpServer.close(), httpsServer.close(), membership.leave()]);
    throw error;
  }
  log.info({ host: options.host, httpPort, httpsPort }, "edge listening");

  let closing: Promise<void> | undefined;
  return {
    httpPort,
    httpsPort,
    caCertificatePath: tls.caCertificatePath,
    logsRequests: (distributionId) => context.routing.get(distributionId)?.logsRequests === true,
    adopt: (port, socket) => {
      gate?.adopted(socket);
      if (port === "http") httpServer.adopt(socket);
      else httpsServer.adopt(socket);
    },
    close: () => {
      closing ??= (async () => {
        await Promise.all([httpServer.close(), httpsServer.close()]);
        // Disk fills go on after their viewers leave; closing the origin pools would wait for them.
        for (const fill of context.fills.values()) fill.abort();
        await membership.leave();
        await pools.close();
        peerClient?.close();
        await Promise.allSettled([...context.pendingWrites]);
        log.info("edge stopped");
      })();
      return closing;
    },
  };
}

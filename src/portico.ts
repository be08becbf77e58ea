import { mkdir } from "node:fs/promises";
import type { Logger } from "./common/logger.js";
import { lockDataDir, recordEndpoint } from "./common/data-dir-lock.js";
import { loadCredentials, StaticCredentialStore, type LoadedCredentials } from "./api/auth/credentials.js";
import { ApiServer } from "./api/server.js";
import { createS3Service } from "./api/s3/index.js";
import { createIamService } from "./api/iam/index.js";
import { openIam } from "./iam/index.js";
import { createCloudFrontService } from "./api/cloudfront/index.js";
import { createMetrics } from "./metrics/index.js";
import { createObservability } from "./metrics/observability.js";
import { EmbeddedBus } from "./cluster/embedded.js";
import { startEdge, type Edge } from "./edge/index.js";
import { startEdgeWorkers } from "./edge/workers.js";
import { createDashboard } from "./dashboard/index.js";
import type { PorticoOptions } from "./config/options.js";

/** A running `portico up`: every component in one process. */
export interface RunningPortico {
  apiUrl: string;
  apiPort: number;
  httpPort: number;
  httpsPort: number;
  caCertificatePath: string;
  credentials: LoadedCredentials;
  /** Stops the edge first (draining viewers), then the API and the stores. */
  close(): Promise<void>;
  /**
   * Prepares an exit that does not wait for `close`: writes the pending
   * metrics synchronously and returns what the exit saves and loses.
   */
  prepareImmediateExit(): ImmediateExitReport;
}

export interface ImmediateExitReport {
  /** Distribution-minutes of metrics written to the metrics database. */
  writtenMetricMinutes: number;
  /** Access log records accepted but not yet delivered, which the exit loses. */
  lostAccessLogRecords: number;
}

/** Returns the loopback address that reaches a listener bound to `host`. */
function loopbackFor(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Starts every component with embedded defaults: the API endpoint (S3,
 * CloudFront and CloudWatch), one edge, the in-process cluster bus, and the
 * metrics store, all keeping state under `options.dataDir`.
 */
export async function startPortico(options: PorticoOptions, log: Logger): Promise<RunningPortico> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const lock = await lockDataDir(options.dataDir);
  let credentials: LoadedCredentials;
  try {
    credentials = await loadCredentials(options.dataDir, {
      accessKeyId: options.rootAccessKeyId,
      secretAccessKey: options.rootSecretAccessKey,
    });
  } catch (error) {
    await lock.release();
    throw error;
  }
  const iam = await openIam({
    dataDir: options.dataDir,
    accountId: credentials.accountId,
    masterKey: process.env.PORTICO_MASTER_KEY,
    log: log.child({ component: "iam" }),
  });
  const credentialStore = iam.credentialStore(new StaticCredentialStore(credentials));
  const bus = new EmbeddedBus(log.child({ component: "cluster" }));
  // Closers run in reverse order, so the lock is released last.
  const closers: Array<() => Promise<void>> = [() => lock.release(), async () => iam.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        log.error({ err: error }, "component failed to stop cleanly");
      }
    }
  };

  try {
    // createMetrics, createObservability and createS3Service give their loggers a component themselves.
    const metrics = await createMetrics({
      dataDir: options.dataDir,
      log,
      accountId: credentials.accountId,
      ...(options.metricsMaxSeries !== undefined ? { maxCustomSeries: options.metricsMaxSeries } : {}),
      ...(options.metricsDiskBytes !== undefined ? { diskBudgetBytes: options.metricsDiskBytes } : {}),
    });
    closers.push(() => metrics.close());
    // Log files go to the API endpoint's S3 service, whose URL is known once it listens.
    let logEndpoint = "";
    const observability = createObservability({
      aggregator: metrics.aggregator,
      reader: metrics.reader,
      metricsDatabase: () => metrics.diskStats(),
      bus,
      credentials: credentialStore,
      s3Endpoint: () => logEndpoint,
      logDeliveryCredentials: credentials.root,
      logIntervalSeconds: options.logIntervalSeconds,
      accessLogDir: options.accessLogDir,
      log,
    });
    const s3 = await createS3Service({
      dataDir: options.dataDir,
      accountId: credentials.accountId,
      credentials: credentialStore,
      log,
      owners: iam.store,
    });
    closers.push(() => s3.close());
    const cloudfront = await createCloudFrontService({
      dataDir: options.dataDir,
      accountId: credentials.accountId,
      zone: options.zone,
      bus: observability.controlChannel,
      bucketExists: (name) => s3.bucketExists(name),
      log: log.child({ component: "control" }),
    });
    closers.push(() => cloudfront.close());

    const dashboard = await createDashboard({
      dataDir: options.dataDir,
      credentials: credentialStore,
      control: cloudfront.control,
      channel: bus,
      metrics: metrics.reader,
      log: log.child({ component: "dashboard" }),
    });

    let ready = false;
    /** With edge workers, how many run; a crashing worker's slot can stay down. */
    let liveEdgeWorkers: (() => number) | undefined;
    const api = new ApiServer({
      credentials: credentialStore,
      services: {
        s3,
        cloudfront,
        cloudwatch: metrics.cloudwatch,
        iam: createIamService({ store: iam.store, accountId: credentials.accountId, rootAccessKeyId: credentials.root.accessKeyId }),
      },
      log: log.child({ component: "api" }),
      health: () => {
        if (!ready) return "starting";
        if (liveEdgeWorkers !== undefined && liveEdgeWorkers() === 0) return "edge down";
        return "ok";
      },
      adminRoutes: new Map([...dashboard.routes, ...observability.adminRoutes]),
    });
    const apiAddress = await api.listen(options.apiPort, options.host);
    closers.push(() => api.close());
    const apiUrl = `http://${loopbackFor(options.host)}:${apiAddress.port}`;
    logEndpoint = apiUrl;
    // Closed before the API, so the last log files can still be uploaded.
    closers.push(() => observability.close());
    log.info({ url: apiUrl, port: apiAddress.port }, "API endpoint listening (S3, CloudFront, CloudWatch)");

    await cloudfront.start();
    const edgeWorkers = options.edgeWorkers ?? 1;
    const edgeOptions = {
      edgeId: "edge-1",
      dataDir: options.dataDir,
      zone: options.zone,
      host: options.host,
      httpPort: options.httpPort,
      httpsPort: options.httpsPort,
      bus,
      metrics: observability.sink,
      s3Endpoint: apiUrl,
      serviceCredentials: credentials.service,
      memoryCacheBytes: options.memoryCacheBytes,
      logsAllRequests: options.accessLogDir !== undefined,
      diskCacheBytes: options.diskCacheBytes ?? 0,
      log: log.child({ component: "edge" }),
    };
    // With several workers the edge runs in forked processes that relay the bus and metrics here.
    let edge: Edge;
    if (edgeWorkers > 1) {
      const { metrics: _sink, ...workerOptions } = edgeOptions;
      const workerEdge = await startEdgeWorkers({
        ...workerOptions,
        workers: edgeWorkers,
        logLevel: options.logLevel,
        rollups: observability.rollupTargets,
      });
      metrics.reader.setEdgeSync(() => workerEdge.flushMetrics());
      liveEdgeWorkers = () => workerEdge.liveWorkers();
      observability.prometheus.addExternal({
        name: "portico_edge_worker_connections",
        help: "Open viewer connections of each edge worker, as it last reported them (at most 0.1 s old while they change).",
        type: "gauge",
        read: () => workerEdge.workerConnections().map(([worker, open]) => [`worker="${worker}"`, open] as const),
      });
      observability.prometheus.addExternal({
        name: "portico_edge_connections_handed_total",
        help: "New viewer connections that an edge worker above its share handed to the worker with the fewest.",
        type: "counter",
        read: () => [["", workerEdge.handedConnections()]],
      });
      edge = workerEdge;
    } else {
      edge = await startEdge(edgeOptions);
    }
    closers.push(() => edge.close());
    log.info(
      { httpPort: edge.httpPort, httpsPort: edge.httpsPort, caCertificatePath: edge.caCertificatePath },
      "edge listening",
    );
    closers.push(await recordEndpoint(options.dataDir, apiUrl));
    ready = true;

    return {
      apiUrl,
      apiPort: apiAddress.port,
      httpPort: edge.httpPort,
      httpsPort: edge.httpsPort,
      caCertificatePath: edge.caCertificatePath,
      credentials,
      close: closeAll,
      prepareImmediateExit: () => ({
        writtenMetricMinutes: metrics.writePendingNow(),
        lostAccessLogRecords: observability.accessLog.undeliveredRecords(),
      }),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

import type { IncomingMessage, ServerResponse } from "node:http";
import type { CredentialStore } from "../api/auth/principal.js";
import type { ControlChannel } from "../cluster/types.js";
import type { Logger } from "../common/logger.js";
import { S3LogDelivery, writeLocalLogFile } from "./access-log/delivery.js";
import { DistributionDirectory } from "./access-log/distributions.js";
import { AccessLogWriter, type AccessLogLimits } from "./access-log/writer.js";
import type { MinuteAggregator } from "./aggregator.js";
import type { RollupTargets } from "./edge-rollup.js";
import { FanOutSink } from "./fan-out.js";
import { PROMETHEUS_CONTENT_TYPE, PrometheusCollector } from "./prometheus.js";
import type { MetricsReader } from "./reader.js";
import { createStatusRoute, STATUS_PATH } from "./status.js";
import { PRUNE_STEPS, type DiskBudgetStats } from "./store-pruning.js";
import type { MetricsSink } from "./types.js";

export const METRICS_PATH = "/_portico/metrics";
export const DEFAULT_LOG_INTERVAL_SECONDS = 300;

export type AdminRoute = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface ObservabilityOptions {
  /** The CloudWatch aggregator, which keeps receiving every record first. */
  aggregator: MinuteAggregator;
  reader: MetricsReader;
  /** Returns the metrics database's size and pruning totals, exported as `portico_metrics_db_*`. */
  metricsDatabase?: () => DiskBudgetStats;
  /** The control plane's channel; the returned `controlChannel` wraps it. */
  bus: ControlChannel;
  credentials: CredentialStore;
  /** Returns the base URL of the bucket store that receives log files, once the API listens. */
  s3Endpoint: () => string;
  /**
   * The key that uploads log files. `portico up` passes the root key, so
   * uploads count as the bucket owner's and need no bucket policy.
   */
  logDeliveryCredentials: { accessKeyId: string; secretAccessKey: string };
  logIntervalSeconds: number;
  /** A folder that receives every distribution's log files too. */
  accessLogDir: string | undefined;
  accessLogLimits?: AccessLogLimits;
  /** The parent logger; the observability routes log as component `observability`, the access log as `access-log`. */
  log: Logger;
}

export interface Observability {
  /** The sink the edge records to: aggregator, Prometheus collector, access log. */
  sink: MetricsSink;
  /** The channel to give the control plane, so Logging settings reach the access log. */
  controlChannel: ControlChannel;
  /** `/_portico/metrics` (Prometheus, unsigned) and `/_portico/status` (SigV4-signed). */
  adminRoutes: Map<string, AdminRoute>;
  prometheus: PrometheusCollector;
  accessLog: AccessLogWriter;
  /** Where edge workers' rollups go: the same aggregator, collector and access log as `sink`. */
  rollupTargets: RollupTargets;
  directory: DistributionDirectory;
  /** Stops the timers and delivers the access logs buffered so far. */
  close(): Promise<void>;
}

/** Builds the Prometheus collector, the access-log writer and the admin routes around the aggregator. */
export function createObservability(options: ObservabilityOptions): Observability {
  const log = options.log.child({ component: "observability" });
  const directory = new DistributionDirectory();
  const prometheus = new PrometheusCollector();
  directory.onDeleted((distributionId) => prometheus.forget(distributionId));
  let delivery: S3LogDelivery | undefined;
  const localDir = options.accessLogDir;
  const accessLog = new AccessLogWriter({
    directory,
    intervalSeconds: options.logIntervalSeconds,
    upload: (bucket, key, body) => {
      delivery ??= new S3LogDelivery({ endpoint: options.s3Endpoint(), credentials: options.logDeliveryCredentials });
      return delivery.put(bucket, key, body);
    },
    writeLocal:
      localDir === undefined
        ? undefined
        : async (name, body) => {
            await writeLocalLogFile(localDir, name, body);
          },
    log: options.log.child({ component: "access-log" }),
    ...(options.accessLogLimits ? { limits: options.accessLogLimits } : {}),
  });
  accessLog.start();

  prometheus.addExternal({
    name: "portico_access_log_lost_records_total",
    help: "Access log records lost, by reason: records_limit and bytes_limit (buffer bounds), delivery_failed.",
    type: "counter",
    read: () => Object.entries(accessLog.stats().lost).map(([reason, value]) => [`reason="${reason}"`, value] as const),
  });
  prometheus.addExternal({
    name: "portico_access_log_buffered_bytes",
    help: "Bytes of access log lines and undelivered files held in memory.",
    type: "gauge",
    read: () => [["", accessLog.stats().bufferedBytes]],
  });
  prometheus.addExternal({
    name: "portico_access_log_delivered_files_total",
    help: "Access log files uploaded to their bucket.",
    type: "counter",
    read: () => [["", accessLog.stats().deliveredFiles]],
  });
  prometheus.addExternal({
    name: "portico_access_log_delivery_failures_total",
    help: "Access log uploads that failed; each file is retried at the next rotation while the buffer has room.",
    type: "counter",
    read: () => [["", accessLog.stats().deliveryFailures]],
  });

  if (options.metricsDatabase) addMetricsDatabaseMetrics(prometheus, options.metricsDatabase);

  const fanOut = new FanOutSink([options.aggregator, prometheus, accessLog], log);
  prometheus.addExternal({
    name: "portico_metrics_sink_failures_total",
    help: "Records that a metrics sink threw on.",
    type: "counter",
    read: () => [["", fanOut.failureCount()]],
  });

  const adminRoutes = new Map<string, AdminRoute>();
  adminRoutes.set(METRICS_PATH, async (_request, response) => {
    await options.reader.sync();
    const body = prometheus.render();
    response.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE, "content-length": String(Buffer.byteLength(body)) });
    response.end(body);
  });
  adminRoutes.set(
    STATUS_PATH,
    createStatusRoute(
      {
        directory,
        bus: options.bus,
        reader: options.reader,
        accessLog: () => {
          const stats = accessLog.stats();
          const lostRecords = stats.lost.records_limit + stats.lost.bytes_limit + stats.lost.delivery_failed;
          return { lostRecords, pendingRecords: stats.pendingRecords, retainedFiles: stats.retainedFiles };
        },
      },
      options.credentials,
      log,
    ),
  );

  return {
    sink: fanOut,
    controlChannel: directory.observing(options.bus),
    adminRoutes,
    prometheus,
    accessLog,
    rollupTargets: {
      addMinute: (distributionId, minuteStartMs, counters) => options.aggregator.addMinute(distributionId, minuteStartMs, counters),
      prometheus,
      records: accessLog,
      countDropped: (records) => options.aggregator.countDropped(records),
    },
    directory,
    close: () => accessLog.close(),
  };
}

/** Exports the metrics database's size, its budget and what pruning has thinned and deleted. */
export function addMetricsDatabaseMetrics(prometheus: PrometheusCollector, stats: () => DiskBudgetStats): void {
  prometheus.addExternal({
    name: "portico_metrics_db_used_bytes",
    help: "Bytes of metrics.db pages in use at the last check (page_count x page_size minus the free list); the WAL is apart.",
    type: "gauge",
    read: () => [["", stats().usedBytes]],
  });
  prometheus.addExternal({
    name: "portico_metrics_db_wal_bytes",
    help: "Bytes of the metrics.db WAL file, truncated to 64 MiB after each checkpoint.",
    type: "gauge",
    read: () => [["", stats().walBytes]],
  });
  prometheus.addExternal({
    name: "portico_metrics_db_budget_bytes",
    help: "Byte budget of the pages in use of metrics.db (--metrics-disk-mb).",
    type: "gauge",
    read: () => [["", stats().budgetBytes]],
  });
  prometheus.addExternal({
    name: "portico_metrics_db_pruned_buckets_total",
    help: "Metric buckets thinned (histograms dropped) or deleted to keep metrics.db within its budget, by step in pruning order.",
    type: "counter",
    read: () => {
      const pruned = stats().pruned;
      return PRUNE_STEPS.map((step) => [`step="${step}"`, pruned[step]] as const);
    },
  });
  prometheus.addExternal({
    name: "portico_metrics_db_prune_passes_total",
    help: "Pruning passes run because metrics.db was over its budget.",
    type: "counter",
    read: () => [["", stats().passes]],
  });
  prometheus.addExternal({
    name: "portico_metrics_db_prune_pass_max_seconds",
    help: "Duration of the longest pruning pass since the process started.",
    type: "gauge",
    read: () => [["", stats().maxPassMs / 1000]],
  });
}

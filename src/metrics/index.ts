import type { ProtocolService } from "../api/context.js";
import { CloudWatchService } from "../api/cloudwatch/service.js";
import type { Logger } from "../common/logger.js";
import { AlarmEvaluator } from "./alarm-evaluator.js";
import { AlarmStore } from "./alarm-store.js";
import { MinuteAggregator } from "./aggregator.js";
import { MetricsReader } from "./reader.js";

export type { MetricsReader };
import { MetricsStore } from "./store.js";
import type { DiskBudgetStats } from "./store-pruning.js";
import type { MetricsSink } from "./types.js";

export interface Metrics {
  sink: MetricsSink;
  /** The same object as `sink`, for rollups that edge workers send. */
  aggregator: MinuteAggregator;
  cloudwatch: ProtocolService;
  /** Statistics and metric listings, for in-process readers such as the dashboard. */
  reader: MetricsReader;
  /** Metric alarms, evaluated every minute. */
  alarms: AlarmEvaluator;
  /** Returns the metrics database's size against its disk budget and the pruning totals. */
  diskStats(): DiskBudgetStats;
  /**
   * Writes the aggregator's pending minutes synchronously, for an exit that
   * cannot wait for `close`, and returns how many distribution-minutes it
   * wrote. Does nothing once the metrics are closed.
   */
  writePendingNow(): number;
  /** Stops the flush and evaluation timers and writes every pending minute. */
  close(): Promise<void>;
}

export interface CreateMetricsOptions {
  dataDir: string;
  /** The parent logger; the metrics log as component `metrics`. */
  log: Logger;
  /** Clock for tests that age data; defaults to `Date.now`. */
  now?: () => number;
  /** Cap on custom metric series, DEFAULT_MAX_CUSTOM_SERIES when unset. */
  maxCustomSeries?: number;
  /** Byte budget of metrics.db, DEFAULT_METRICS_DISK_MIB MiB when unset. */
  diskBudgetBytes?: number;
  /** The account id in alarm ARNs. */
  accountId?: string;
  /** Whether alarms are evaluated on a timer; true when unset. Tests that call `alarms.evaluateAll` themselves set false. */
  evaluateAlarmsOnTimer?: boolean;
}

/** Opens `<dataDir>/metrics/metrics.db` and starts aggregating and flushing. */
export async function createMetrics(options: CreateMetricsOptions): Promise<Metrics> {
  const log = options.log.child({ component: "metrics" });
  const store = new MetricsStore(options.dataDir, {
    log,
    ...(options.maxCustomSeries !== undefined ? { maxCustomSeries: options.maxCustomSeries } : {}),
    ...(options.diskBudgetBytes !== undefined ? { diskBudgetBytes: options.diskBudgetBytes } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const aggregator = new MinuteAggregator({ store, log, ...(options.now ? { now: options.now } : {}) });
  aggregator.start();
  const reader = new MetricsReader(store, aggregator);
  const alarms = new AlarmEvaluator(new AlarmStore(store.db), reader, log);
  if (options.evaluateAlarmsOnTimer !== false) alarms.start();
  const cloudwatch = new CloudWatchService({ reader, alarms, accountId: options.accountId ?? "000000000000", log });
  let closed = false;
  return {
    sink: aggregator,
    aggregator,
    cloudwatch,
    reader,
    alarms,
    diskStats: () => store.diskStats(),
    writePendingNow: () => (closed ? 0 : aggregator.writePending()),
    async close() {
      if (closed) return;
      closed = true;
      alarms.close();
      aggregator.close();
      store.close();
    },
  };
}


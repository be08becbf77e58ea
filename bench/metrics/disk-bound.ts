/**
 * Measures the bytes on disk per stored bucket of the metrics database, for
 * the largest buckets (full histograms, longest numbers), for the same
 * buckets thinned by pruning (histograms dropped) and for a typical one (one
 * value a minute). Prints the size metrics.db would reach without a disk
 * budget, which is series x buckets per series x bytes per bucket plus the
 * WAL size limit, and the size of 15 days of minute data at the series caps.
 *
 * Usage: npx tsx bench/metrics/disk-bound.ts [rowsPerKind] [customSeriesCap]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/common/logger.js";
import { addSample, emptyStatSet, type StatSet } from "../../src/metrics/stat-set.js";
import type { DistributionCounters } from "../../src/metrics/distribution-counters.js";
import {
  DEFAULT_MAX_CUSTOM_SERIES,
  MAX_DISTRIBUTION_SERIES,
  maxBucketsPerSeries,
  MetricsStore,
  RETENTION_TIERS,
  WAL_SIZE_LIMIT_BYTES,
} from "../../src/metrics/store.js";
import { worstCustomStats, worstDistributionCounters } from "./worst-case.js";

const rowsPerKind = Number(process.argv[2] ?? 20_000);
const customSeriesCap = Number(process.argv[3] ?? DEFAULT_MAX_CUSTOM_SERIES);
const SERIES = 20;
const MINUTE_MS = 60_000;
const startMs = Date.UTC(2030, 0, 1);

/** Returns the size of metrics.db after a checkpoint, so the WAL's pages are in the main file. */
function databaseBytes(store: MetricsStore, dataDir: string): number {
  store.db.pragma("wal_checkpoint(TRUNCATE)");
  return statSync(join(dataDir, "metrics", "metrics.db")).size;
}

function measure(
  kind: "custom" | "distribution",
  stats: (seed: number) => StatSet | undefined,
  counters: (seed: number) => DistributionCounters = worstDistributionCounters,
): number {
  const dataDir = mkdtempSync(join(tmpdir(), "portico-disk-bound-"));
  // No budget: the measurement needs every bucket kept.
  const store = new MetricsStore(dataDir, { log: silentLogger(), maxCustomSeries: SERIES, diskBudgetBytes: Number.MAX_SAFE_INTEGER });
  const emptyBytes = databaseBytes(store, dataDir);
  const perSeries = Math.ceil(rowsPerKind / SERIES);
  for (let minute = 0; minute < perSeries; minute += 100) {
    const minuteStarts = Array.from({ length: Math.min(100, perSeries - minute) }, (_, i) => startMs + (minute + i) * MINUTE_MS);
    for (let series = 0; series < SERIES; series++) {
      if (kind === "distribution") {
        store.addDistributionMinutes(
          minuteStarts.map((minuteStartMs, i) => ({
            distributionId: `E2BENCH${String(series).padStart(7, "0")}`,
            minuteStartMs,
            counters: counters(minute + i),
          })),
        );
      } else {
        store.addCustomMinutes(
          minuteStarts.map((minuteStartMs, i) => ({
            namespace: "Bench/DiskBound",
            metricName: "Latency",
            dimensions: [{ Name: "Series", Value: String(series) }],
            unit: "Milliseconds",
            minuteStartMs,
            stats: stats(minute + i)!,
          })),
        );
      }
    }
  }
  const bytes = databaseBytes(store, dataDir) - emptyBytes;
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
  return bytes / (perSeries * SERIES);
}

function typicalStats(seed: number): StatSet {
  const stats = emptyStatSet(true);
  addSample(stats, 12.5 + (seed % 7));
  return stats;
}

/** Returns the statistics as pruning leaves them: sample count, sum, minimum and maximum, no histogram. */
function thinned(stats: StatSet): StatSet {
  return { ...stats, sketch: undefined };
}

function thinnedCounters(seed: number): DistributionCounters {
  const counters = worstDistributionCounters(seed);
  counters.originLatencyMs = thinned(counters.originLatencyMs);
  return counters;
}

const buckets = maxBucketsPerSeries();
const minuteBuckets = RETENTION_TIERS[0].keepForMs / 60_000 + 1;
const customWorst = measure("custom", worstCustomStats);
const distributionWorst = measure("distribution", () => undefined);
const customThinned = measure("custom", (seed) => thinned(worstCustomStats(seed)));
const distributionThinned = measure("distribution", () => undefined, thinnedCounters);
const customTypical = measure("custom", typicalStats);
const gib = (bytes: number) => Math.round((bytes / 1024 ** 3) * 10) / 10;
const customSeriesBytes = customWorst * buckets;
const distributionSeriesBytes = distributionWorst * buckets;
console.log(
  JSON.stringify(
    {
      bucketsPerSeries: buckets,
      bytesPerBucket: {
        customWorst: Math.round(customWorst),
        distributionWorst: Math.round(distributionWorst),
        customThinned: Math.round(customThinned),
        distributionThinned: Math.round(distributionThinned),
        customTypical: Math.round(customTypical),
      },
      worstPerSeriesMiB: {
        custom: Math.round(customSeriesBytes / 1024 ** 2),
        distribution: Math.round(distributionSeriesBytes / 1024 ** 2),
      },
      typicalPerSeriesMiB: Math.round((customTypical * buckets) / 1024 ** 2),
      worstCaseGiB: {
        customSeriesCap,
        distributionSeriesCap: MAX_DISTRIBUTION_SERIES,
        custom: gib(customSeriesCap * customSeriesBytes),
        distribution: gib(MAX_DISTRIBUTION_SERIES * distributionSeriesBytes),
        total: gib(customSeriesCap * customSeriesBytes + MAX_DISTRIBUTION_SERIES * distributionSeriesBytes + WAL_SIZE_LIMIT_BYTES),
      },
      fifteenDaysOfMinutesAtTheCapsGiB: {
        minuteBuckets,
        withHistograms: gib(minuteBuckets * (customSeriesCap * customWorst + MAX_DISTRIBUTION_SERIES * distributionWorst)),
        thinned: gib(minuteBuckets * (customSeriesCap * customThinned + MAX_DISTRIBUTION_SERIES * distributionThinned)),
        typicalCustom: gib(minuteBuckets * customSeriesCap * customTypical),
      },
    },
    null,
    2,
  ),
);

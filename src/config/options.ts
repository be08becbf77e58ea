import { resolve } from "node:path";
import { DEFAULT_MAX_CUSTOM_SERIES } from "../metrics/store.js";
import { DEFAULT_METRICS_DISK_MIB } from "../metrics/store-pruning.js";

/** Everything `portico up` needs to start, after flags and environment are merged. */
export interface PorticoOptions {
  /** Folder that contains every piece of state: credentials, buckets, control and metrics databases, TLS material. */
  dataDir: string;
  /** Address every listener binds to. */
  host: string;
  apiPort: number;
  httpPort: number;
  httpsPort: number;
  /** DNS zone under which distribution domain names are made. */
  zone: string;
  /** Byte budget of the edge's memory cache tier, split evenly between edge workers. */
  memoryCacheBytes: number;
  /** Byte budget of the edge's disk cache tier under `<dataDir>/cache/`; 0 turns it off. */
  diskCacheBytes?: number;
  /** Edge worker processes sharing the HTTP and HTTPS ports; 1 runs the edge in the main process, and so does leaving it out. */
  edgeWorkers?: number;
  logLevel: string;
  rootAccessKeyId: string | undefined;
  rootSecretAccessKey: string | undefined;
  /** Seconds between access log rotations: each closes the current files and delivers them. */
  logIntervalSeconds: number;
  /** A folder that receives every distribution's access log files, besides Logging.Bucket. */
  accessLogDir: string | undefined;
  /** Cap on custom metric series in `<dataDir>/metrics/metrics.db`. PutMetricData that would pass it is rejected. */
  metricsMaxSeries?: number;
  /** Byte budget of `<dataDir>/metrics/metrics.db`; past it the store prunes its oldest histograms and buckets. */
  metricsDiskBytes?: number;
}

export const DEFAULTS = {
  dataDir: ".portico",
  host: "127.0.0.1",
  apiPort: 4580,
  httpPort: 8081,
  httpsPort: 8444,
  zone: "portico.localhost",
  memoryCacheMiB: 256,
  diskCacheMiB: 0,
  logLevel: "info",
  logIntervalSeconds: 300,
  metricsMaxSeries: DEFAULT_MAX_CUSTOM_SERIES,
  metricsDiskMiB: DEFAULT_METRICS_DISK_MIB,
} as const;

/**
 * Smallest metrics disk budget, in MiB. Less would leave only minutes of
 * data for even a few busy series, so a smaller value is more likely a unit
 * mistake than a choice.
 */
export const MIN_METRICS_DISK_MIB = 16;
/** Largest metrics disk budget, in MiB: 16 TiB. */
export const MAX_METRICS_DISK_MIB = 16 * 1024 * 1024;

/** Parses a TCP port from a flag or environment value; 0 lets the system pick a free one. */
export function parsePort(value: string, name: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new Error(`invalid ${name} '${value}': expected a TCP port from 0 to 65535`);
  }
  return port;
}

/** Parses the number of edge worker processes: a whole number from 1 to 256. */
export function parseWorkerCount(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 256) {
    throw new Error(`invalid --edge-workers '${value}': expected a whole number from 1 to 256`);
  }
  return count;
}

/** Parses a positive whole number of mebibytes. */
export function parseMebibytes(value: string, name: string, minimumMiB = 1): number {
  const mebibytes = Number(value);
  if (!/^\d+$/.test(value) || mebibytes < minimumMiB) {
    throw new Error(`invalid ${name} '${value}': expected a whole number of MiB, at least ${minimumMiB}`);
  }
  return mebibytes * 1024 * 1024;
}

/**
 * Checks a DNS zone name: lower-case labels of letters, digits and hyphens,
 * at least two of them, as in `portico.localhost` or `cdn.example.com`.
 */
export function parseZone(value: string): string {
  const zone = value.toLowerCase().replace(/\.$/, "");
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  const labels = zone.split(".");
  if (labels.length < 2 || !labels.every((part) => label.test(part)) || zone.length > 200) {
    throw new Error(`invalid zone '${value}': expected a DNS name such as portico.localhost`);
  }
  return zone;
}

/** Parses a whole number of seconds from 1 to one day. */
export function parseSeconds(value: string, name: string): number {
  const seconds = Number(value);
  if (!/^\d+$/.test(value) || seconds < 1 || seconds > 86_400) {
    throw new Error(`invalid ${name} '${value}': expected a whole number of seconds from 1 to 86400`);
  }
  return seconds;
}

/** Parses the cap on custom metric series: a whole number from 1 to 1,000,000. */
export function parseSeriesLimit(value: string): number {
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > 1_000_000) {
    throw new Error(`invalid --metrics-max-series '${value}': expected a whole number from 1 to 1000000`);
  }
  return limit;
}

/** Parses the metrics database's byte budget: a whole number of MiB from MIN_METRICS_DISK_MIB to MAX_METRICS_DISK_MIB. */
export function parseMetricsDiskBudget(value: string): number {
  const mebibytes = Number(value);
  if (!/^\d+$/.test(value) || mebibytes < MIN_METRICS_DISK_MIB || mebibytes > MAX_METRICS_DISK_MIB) {
    throw new Error(
      `invalid --metrics-disk-mb '${value}': expected a whole number of MiB from ${MIN_METRICS_DISK_MIB} to ${MAX_METRICS_DISK_MIB}`,
    );
  }
  return mebibytes * 1024 * 1024;
}

export function resolveDataDir(value: string): string {
  return resolve(value);
}

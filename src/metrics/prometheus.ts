import { HTTP2_FLOOD_KINDS, type EdgeResultType, type Http2FloodKind, type MetricsSink, type RequestRecord } from "./types.js";

/*
 * Prometheus metrics in the text exposition format (version 0.0.4), written
 * by hand rather than with prom-client. Recording a request is a Map lookup
 * and a few increments on preallocated typed arrays, so the request path does
 * no label hashing and builds no strings.
 */

/** The Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Status classes, as the `status_class` label spells them, indexed by
 * `status / 100`. `000` is a viewer that left before any response (status 0),
 * written as in CloudFront's access logs.
 */
const STATUS_CLASSES = ["000", "1xx", "2xx", "3xx", "4xx", "5xx"] as const;

/** Cache results, as the `cache_status` label spells them: CloudFront's x-edge-result-type values. */
const RESULT_TYPES: readonly EdgeResultType[] = [
  "Hit",
  "RefreshHit",
  "Miss",
  "LimitExceeded",
  "CapacityExceeded",
  "Error",
  "Redirect",
];

/** Upper bounds of the request duration buckets, in seconds. */
export const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upper bounds of the origin latency buckets, in seconds. */
export const ORIGIN_LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Upper bounds of the response size buckets, in bytes. */
export const RESPONSE_SIZE_BUCKETS_BYTES = [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864];

/** One histogram: counts per bucket (not cumulative until rendered), sum and count. */
class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]! += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

/** A histogram as plain data, for IPC. */
export interface HistogramData {
  counts: Float64Array;
  sum: number;
  count: number;
}

/** The counts of one distribution's series over an interval. */
export interface SeriesDelta {
  distributionId: string;
  requests: Float64Array;
  cacheable: Float64Array;
  duration: HistogramData;
  originLatency: HistogramData;
  responseSize: HistogramData;
  bytesSent: number;
  bytesReceived: number;
}

export interface PrometheusDeltas {
  series: SeriesDelta[];
  droppedRecords: number;
  /** HTTP/2 connections closed as floods, by kind; absent when there were none. */
  http2Floods?: Partial<Record<Http2FloodKind, number>>;
}

function histogramData(histogram: Histogram): HistogramData {
  return { counts: histogram.counts, sum: histogram.sum, count: histogram.count };
}

function addInto(target: Float64Array, source: Float64Array): void {
  const length = Math.min(target.length, source.length);
  for (let i = 0; i < length; i++) target[i]! += source[i]!;
}

function mergeHistogram(target: Histogram, source: HistogramData): void {
  addInto(target.counts, source.counts);
  target.sum += source.sum;
  target.count += source.count;
}

/** The series of one distribution. */
class DistributionSeries {
  /** Requests by status class and cache status: index `statusClass * RESULT_TYPES.length + resultType`. */
  readonly requests = new Float64Array(STATUS_CLASSES.length * RESULT_TYPES.length);
  /** Requests that CloudWatch's CacheHitRate counts (not POST or PUT, status 100 to 399), by cache status. */
  readonly cacheable = new Float64Array(RESULT_TYPES.length);
  readonly duration = new Histogram(DURATION_BUCKETS_SECONDS);
  readonly originLatency = new Histogram(ORIGIN_LATENCY_BUCKETS_SECONDS);
  readonly responseSize = new Histogram(RESPONSE_SIZE_BUCKETS_BYTES);
  bytesSent = 0;
  bytesReceived = 0;

  constructor(readonly label: string) {}
}

function resultTypeIndex(resultType: EdgeResultType): number {
  switch (resultType) {
    case "Hit":
      return 0;
    case "RefreshHit":
      return 1;
    case "Miss":
      return 2;
    case "LimitExceeded":
      return 3;
    case "CapacityExceeded":
      return 4;
    case "Redirect":
      return 6;
    default:
      return 5;
  }
}

/** A gauge or counter that another component owns, read when the metrics are rendered. */
export interface ExternalMetric {
  name: string;
  help: string;
  type: "counter" | "gauge";
  /** Returns the current samples: label text (such as `reason="bytes"`, or empty) and value. */
  read(): Iterable<readonly [labels: string, value: number]>;
}

/** Largest number of distributions with series; past it, records of new distributions are counted as dropped. */
export const MAX_PROMETHEUS_DISTRIBUTIONS = 10_000;

/** Collects per-distribution request metrics and renders them for Prometheus to scrape. */
export class PrometheusCollector implements MetricsSink {
  private readonly series = new Map<string, DistributionSeries>();
  private readonly external: ExternalMetric[] = [];
  private droppedRecords = 0;
  private http2Floods: Partial<Record<Http2FloodKind, number>> = {};

  /** Adds one request in constant time. Records past the distribution limit are counted as dropped. */
  record(entry: RequestRecord): void {
    let series = this.series.get(entry.distributionId);
    if (series === undefined) {
      if (this.series.size >= MAX_PROMETHEUS_DISTRIBUTIONS || typeof entry.distributionId !== "string") {
        this.droppedRecords += 1;
        return;
      }
      series = new DistributionSeries(escapeLabelValue(entry.distributionId));
      this.series.set(entry.distributionId, series);
    }

    const status = entry.status;
    const statusClass = Math.floor(status / 100);
    const result = resultTypeIndex(entry.resultType);
    if (statusClass >= 0 && statusClass < STATUS_CLASSES.length) {
      series.requests[statusClass * RESULT_TYPES.length + result]! += 1;
    }
    if (status >= 100 && status < 400 && entry.method !== "POST" && entry.method !== "PUT") series.cacheable[result]! += 1;
    if (entry.durationMs >= 0) series.duration.observe(entry.durationMs / 1000);
    const latencyMs = entry.originLatencyMs;
    if (latencyMs !== undefined && latencyMs >= 0) series.originLatency.observe(latencyMs / 1000);
    if (entry.bytesDownloaded >= 0) {
      series.bytesSent += entry.bytesDownloaded;
      series.responseSize.observe(entry.bytesDownloaded);
    }
    if (entry.bytesUploaded > 0) series.bytesReceived += entry.bytesUploaded;
  }

  countHttp2Flood(kind: Http2FloodKind): void {
    this.http2Floods[kind] = (this.http2Floods[kind] ?? 0) + 1;
  }

  /**
   * Returns the counts recorded since the last call, as plain data, and
   * starts over. An edge worker sends them to the primary's collector.
   */
  takeDeltas(): PrometheusDeltas {
    const series: SeriesDelta[] = [];
    for (const [distributionId, current] of this.series) {
      series.push({
        distributionId,
        requests: current.requests,
        cacheable: current.cacheable,
        duration: histogramData(current.duration),
        originLatency: histogramData(current.originLatency),
        responseSize: histogramData(current.responseSize),
        bytesSent: current.bytesSent,
        bytesReceived: current.bytesReceived,
      });
    }
    this.series.clear();
    const droppedRecords = this.droppedRecords;
    this.droppedRecords = 0;
    const http2Floods = this.http2Floods;
    this.http2Floods = {};
    return { series, droppedRecords, http2Floods };
  }

  /** Adds counts taken from another collector with `takeDeltas`. */
  mergeDeltas(deltas: PrometheusDeltas): void {
    this.droppedRecords += deltas.droppedRecords;
    for (const [kind, count] of Object.entries(deltas.http2Floods ?? {}) as Array<[Http2FloodKind, number]>) {
      this.http2Floods[kind] = (this.http2Floods[kind] ?? 0) + count;
    }
    for (const delta of deltas.series) {
      let series = this.series.get(delta.distributionId);
      if (series === undefined) {
        if (this.series.size >= MAX_PROMETHEUS_DISTRIBUTIONS) {
          this.droppedRecords += delta.duration.count;
          continue;
        }
        series = new DistributionSeries(escapeLabelValue(delta.distributionId));
        this.series.set(delta.distributionId, series);
      }
      addInto(series.requests, delta.requests);
      addInto(series.cacheable, delta.cacheable);
      mergeHistogram(series.duration, delta.duration);
      mergeHistogram(series.originLatency, delta.originLatency);
      mergeHistogram(series.responseSize, delta.responseSize);
      series.bytesSent += delta.bytesSent;
      series.bytesReceived += delta.bytesReceived;
    }
  }

  /** Adds a metric that is read from its owner at each scrape. */
  addExternal(metric: ExternalMetric): void {
    this.external.push(metric);
  }

  /** Forgets a distribution's series, after the distribution is deleted. */
  forget(distributionId: string): void {
    this.series.delete(distributionId);
  }

  /** Renders every metric in the text exposition format. */
  render(): string {
    const lines: string[] = [];
    const all = [...this.series.values()];

    header(
      lines,
      "portico_requests_total",
      "counter",
      "Viewer requests by distribution, status class (000 when the viewer left before a response) and cache status (CloudFront x-edge-result-type).",
    );
    for (const series of all) {
      for (let statusClass = 0; statusClass < STATUS_CLASSES.length; statusClass++) {
        for (let result = 0; result < RESULT_TYPES.length; result++) {
          const value = series.requests[statusClass * RESULT_TYPES.length + result]!;
          if (value === 0) continue;
          lines.push(
            `portico_requests_total{distribution_id="${series.label}",status_class="${STATUS_CLASSES[statusClass]}",cache_status="${RESULT_TYPES[result]}"} ${value}`,
          );
        }
      }
    }

    header(
      lines,
      "portico_cacheable_requests_total",
      "counter",
      "Requests that CloudWatch's CacheHitRate counts (methods other than POST and PUT, status 100 to 399), by cache status.",
    );
    for (const series of all) {
      for (let result = 0; result < RESULT_TYPES.length; result++) {
        const value = series.cacheable[result]!;
        if (value === 0) continue;
        lines.push(`portico_cacheable_requests_total{distribution_id="${series.label}",cache_status="${RESULT_TYPES[result]}"} ${value}`);
      }
    }

    header(lines, "portico_sent_bytes_total", "counter", "Bytes sent to viewers, headers included.");
    for (const series of all) lines.push(`portico_sent_bytes_total{distribution_id="${series.label}"} ${series.bytesSent}`);
    header(lines, "portico_received_bytes_total", "counter", "Request body bytes received from viewers.");
    for (const series of all) lines.push(`portico_received_bytes_total{distribution_id="${series.label}"} ${series.bytesReceived}`);

    header(lines, "portico_request_duration_seconds", "histogram", "Time from a viewer request's arrival to the last byte sent.");
    for (const series of all) renderHistogram(lines, "portico_request_duration_seconds", series.label, series.duration);
    header(lines, "portico_origin_latency_seconds", "histogram", "Time to the origin's first byte, over requests that reached the origin.");
    for (const series of all) renderHistogram(lines, "portico_origin_latency_seconds", series.label, series.originLatency);
    header(lines, "portico_response_size_bytes", "histogram", "Bytes sent per viewer response, headers included.");
    for (const series of all) renderHistogram(lines, "portico_response_size_bytes", series.label, series.responseSize);

    header(lines, "portico_metrics_dropped_records_total", "counter", "Request records the Prometheus collector could not count.");
    lines.push(`portico_metrics_dropped_records_total ${this.droppedRecords}`);

    header(
      lines,
      "portico_edge_http2_floods_total",
      "counter",
      "HTTP/2 connections the edge closed with GOAWAY ENHANCE_YOUR_CALM, by the flood bound they passed.",
    );
    for (const kind of HTTP2_FLOOD_KINDS) {
      lines.push(`portico_edge_http2_floods_total{kind="${kind}"} ${this.http2Floods[kind] ?? 0}`);
    }

    for (const metric of this.external) {
      header(lines, metric.name, metric.type, metric.help);
      for (const [labels, value] of metric.read()) {
        lines.push(labels === "" ? `${metric.name} ${value}` : `${metric.name}{${labels}} ${value}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}

function header(lines: string[], name: string, type: string, help: string): void {
  lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`);
}

function renderHistogram(lines: string[], name: string, label: string, histogram: Histogram): void {
  let cumulative = 0;
  for (let i = 0; i < histogram.bounds.length; i++) {
    cumulative += histogram.counts[i]!;
    lines.push(`${name}_bucket{distribution_id="${label}",le="${histogram.bounds[i]}"} ${cumulative}`);
  }
  lines.push(`${name}_bucket{distribution_id="${label}",le="+Inf"} ${histogram.count}`);
  lines.push(`${name}_sum{distribution_id="${label}"} ${histogram.sum}`);
  lines.push(`${name}_count{distribution_id="${label}"} ${histogram.count}`);
}

/** Escapes a label value as the exposition format requires: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

import type { Logger } from "../common/logger.js";
import type { Http2FloodKind, MetricsSink, RequestRecord } from "./types.js";

/** Shortest interval between two error logs of a failing sink. */
const ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * Passes each record to several sinks in order. Every sink returns at once
 * (none waits on I/O), and one that throws is counted and skipped, so a fault
 * in one never reaches the request path or the others.
 */
export class FanOutSink implements MetricsSink {
  private failures = 0;
  private lastErrorLogMs = 0;

  constructor(
    private readonly sinks: readonly MetricsSink[],
    private readonly log: Logger,
  ) {}

  record(entry: RequestRecord): void {
    for (const sink of this.sinks) {
      try {
        sink.record(entry);
      } catch (error) {
        this.sinkFailed(error, "a request");
      }
    }
  }

  countHttp2Flood(kind: Http2FloodKind): void {
    for (const sink of this.sinks) {
      try {
        sink.countHttp2Flood?.(kind);
      } catch (error) {
        this.sinkFailed(error, "an HTTP/2 flood");
      }
    }
  }

  /** Counts a sink's failure, and logs it at most once per ERROR_LOG_INTERVAL_MS. */
  private sinkFailed(error: unknown, what: string): void {
    this.failures += 1;
    const nowMs = Date.now();
    if (nowMs - this.lastErrorLogMs >= ERROR_LOG_INTERVAL_MS) {
      this.lastErrorLogMs = nowMs;
      this.log.error({ err: error, failures: this.failures }, `metrics sink failed to record ${what}`);
    }
  }

  /** Records that a sink threw on, since start. */
  failureCount(): number {
    return this.failures;
  }
}

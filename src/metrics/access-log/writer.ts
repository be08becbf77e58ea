import { promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import type { Logger } from "../../common/logger.js";
import { randomUpperAlphanumeric } from "../../common/ids.js";
import type { MetricsSink, RequestRecord } from "../types.js";
import type { DistributionDirectory, DistributionLogInfo } from "./distributions.js";
import { LOG_FILE_HEADER, formatLogLine, logFileKey } from "./format.js";

const gzip = promisify(gzipCallback);

const HOUR_MS = 3_600_000;
/** How often records waiting in memory are formatted into log lines. */
const FORMAT_INTERVAL_MS = 1_000;
/** Shortest interval between two warnings about lost records. */
const LOSS_WARNING_INTERVAL_MS = 60_000;

/** Cause of a lost record, spelled as the `reason` label of the loss counter. */
export type LossReason = "records_limit" | "bytes_limit" | "delivery_failed";

export interface AccessLogLimits {
  /** Records accepted but not yet formatted, at most. */
  maxPendingRecords: number;
  /** Bytes of formatted lines and compressed files awaiting delivery, at most. */
  maxBufferedBytes: number;
}

export const DEFAULT_ACCESS_LOG_LIMITS: AccessLogLimits = {
  maxPendingRecords: 100_000,
  maxBufferedBytes: 64 * 1024 * 1024,
};

/** Uploads one log file to a bucket; rejects when the bucket cannot take it. */
export type BucketUpload = (bucket: string, key: string, body: Buffer) => Promise<void>;
/** Writes one log file to the local folder. */
export type LocalWrite = (name: string, body: Buffer) => Promise<void>;

export interface AccessLogWriterOptions {
  directory: DistributionDirectory;
  /** Seconds between two rotations: each rotation closes the current files and delivers them. */
  intervalSeconds: number;
  upload: BucketUpload;
  /** Writes every distribution's files locally too, logging enabled or not. */
  writeLocal: LocalWrite | undefined;
  log: Logger;
  limits?: AccessLogLimits;
  now?: () => number;
}

/** The lines of one distribution for one UTC hour, since the last rotation. */
interface OpenFile {
  distributionId: string;
  /** The distribution's settings when the file was opened, so a file outlives a deletion. */
  info: DistributionLogInfo | undefined;
  hourStartMs: number;
  lines: string[];
  bytes: number;
}

/** A compressed file whose upload failed, kept for the next rotation. */
interface RetainedFile {
  bucket: string;
  key: string;
  body: Buffer;
  records: number;
}

/**
 * Writes CloudFront standard logs. `record` only appends the record to an
 * array, so the request path never formats, compresses or waits on I/O. A
 * timer formats records into lines each second and, every interval, each
 * distribution's lines become one gzip file per UTC hour, uploaded to
 * Logging.Bucket under Logging.Prefix and written to the local folder when
 * one is set. Failed uploads are retried at the next rotation. Memory is
 * bounded by record count and by bytes. Every record lost to a bound, or to
 * a file that could not be kept, is counted by reason and reported in a
 * rate-limited warning.
 */
export class AccessLogWriter implements MetricsSink {
  private pending: RequestRecord[] = [];
  private open = new Map<string, OpenFile>();
  private retained: RetainedFile[] = [];
  private bufferedBytes = 0;
  private readonly lost: Record<LossReason, number> = { records_limit: 0, bytes_limit: 0, delivery_failed: 0 };
  private lostSinceWarning = 0;
  private lastWarningMs = 0;
  private delivered = 0;
  private deliveryFailures = 0;
  private formatTimer: NodeJS.Timeout | undefined;
  private rotateTimer: NodeJS.Timeout | undefined;
  private rotating: Promise<void> = Promise.resolve();
  /** Records of the files a rotation has taken from `open` and not finished delivering. */
  private deliveringRecords = 0;
  private readonly limits: AccessLogLimits;
  private readonly now: () => number;

  constructor(private readonly options: AccessLogWriterOptions) {
    this.limits = options.limits ?? DEFAULT_ACCESS_LOG_LIMITS;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.formatTimer = setInterval(() => this.formatPending(), FORMAT_INTERVAL_MS);
    this.formatTimer.unref();
    this.rotateTimer = setInterval(() => void this.rotate(), this.options.intervalSeconds * 1000);
    this.rotateTimer.unref();
  }

  /** Accepts one record. Constant time; a record past the bound is counted as lost. */
  record(entry: RequestRecord): void {
    if (this.options.writeLocal === undefined && this.options.directory.get(entry.distributionId)?.loggingEnabled !== true) {
      return;
    }
    if (this.pending.length >= this.limits.maxPendingRecords) {
      this.countLoss("records_limit", 1);
      return;
    }
    this.pending.push(entry);
  }

  /** Counters for Prometheus and tests. */
  stats(): {
    lost: Readonly<Record<LossReason, number>>;
    pendingRecords: number;
    bufferedBytes: number;
    deliveredFiles: number;
    deliveryFailures: number;
    retainedFiles: number;
  } {
    return {
      lost: this.lost,
      pendingRecords: this.pending.length,
      bufferedBytes: this.bufferedBytes,
      deliveredFiles: this.delivered,
      deliveryFailures: this.deliveryFailures,
      retainedFiles: this.retained.length,
    };
  }

  /**
   * Returns how many accepted records are not yet in a delivered or written
   * file: waiting to be formatted, in open files, in files being delivered,
   * and in files kept for a retry. An exit now loses them.
   */
  undeliveredRecords(): number {
    let records = this.pending.length + this.deliveringRecords;
    for (const file of this.open.values()) records += file.lines.length;
    for (const file of this.retained) records += file.records;
    return records;
  }

  /** Formats waiting records into lines of their distribution's current file. */
  formatPending(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    for (const record of batch) {
      const info = this.options.directory.get(record.distributionId);
      if (info === undefined && this.options.writeLocal === undefined) continue;
      let line: string;
      try {
        line = formatLogLine(record, {
          domainName: info?.domainName ?? record.host,
          includeCookies: info?.includeCookies ?? false,
        });
      } catch (error) {
        this.options.log.error({ err: error, distributionId: record.distributionId }, "access log record could not be formatted");
        continue;
      }
      if (this.bufferedBytes + line.length > this.limits.maxBufferedBytes) {
        this.countLoss("bytes_limit", 1);
        continue;
      }
      const hourStartMs = Math.floor(record.timestampMs / HOUR_MS) * HOUR_MS;
      const fileKey = `${record.distributionId}\0${hourStartMs}`;
      let file = this.open.get(fileKey);
      if (file === undefined) {
        file = { distributionId: record.distributionId, info, hourStartMs, lines: [], bytes: 0 };
        this.open.set(fileKey, file);
      }
      file.lines.push(line);
      file.bytes += line.length;
      this.bufferedBytes += line.length;
    }
  }

  /**
   * Closes the current files and delivers them, after retrying files that
   * failed before. Rotations run one at a time; a call during a rotation
   * waits for it and then runs.
   */
  rotate(): Promise<void> {
    const next = this.rotating.then(() => this.rotateNow());
    // A failed rotation is logged and must not stop the ones queued after it.
    this.rotating = next.catch((error: unknown) => {
      this.options.log.error({ err: error }, "access log rotation failed");
    });
    return this.rotating;
  }

  /** Stops the timers and delivers everything buffered. */
  async close(): Promise<void> {
    if (this.formatTimer !== undefined) clearInterval(this.formatTimer);
    if (this.rotateTimer !== undefined) clearInterval(this.rotateTimer);
    this.formatTimer = undefined;
    this.rotateTimer = undefined;
    await this.rotate();
    if (this.retained.length > 0) {
      const records = this.retained.reduce((sum, file) => sum + file.records, 0);
      this.countLoss("delivery_failed", records);
      this.options.log.error(
        { files: this.retained.length, records },
        "access log files could not be delivered before shutdown; their records are lost",
      );
      this.retained = [];
    }
    this.warnLoss(true);
  }

  private async rotateNow(): Promise<void> {
    this.formatPending();
    const retry = this.retained;
    this.retained = [];
    for (const file of retry) {
      this.bufferedBytes -= file.body.length;
      this.deliveringRecords += file.records;
      try {
        await this.upload(file);
      } finally {
        this.deliveringRecords -= file.records;
      }
    }

    const files = [...this.open.values()];
    this.open = new Map();
    for (const file of files) this.deliveringRecords += file.lines.length;
    for (const file of files) {
      this.bufferedBytes -= file.bytes;
      try {
        await this.deliver(file);
      } catch (error) {
        this.countLoss("delivery_failed", file.lines.length);
        this.options.log.error({ err: error, distributionId: file.distributionId }, "access log file could not be written");
      } finally {
        this.deliveringRecords -= file.lines.length;
      }
    }
    this.warnLoss(false);
  }

  private async deliver(file: OpenFile): Promise<void> {
    const body = await gzip(LOG_FILE_HEADER + file.lines.join(""));
    const uniqueId = randomUpperAlphanumeric(12);
    const info = file.info;

    const sendsToBucket = info !== undefined && info.loggingEnabled;
    if (this.options.writeLocal !== undefined) {
      const name = logFileKey("", file.distributionId, file.hourStartMs, uniqueId);
      try {
        await this.options.writeLocal(name, body);
      } catch (error) {
        // The records survive only in the bucket copy, when there is one.
        if (!sendsToBucket) this.countLoss("delivery_failed", file.lines.length);
        this.options.log.error(
          { err: error, distributionId: file.distributionId, name },
          "access log file could not be written to the local folder",
        );
      }
    }
    if (!sendsToBucket) return;
    if (info.logBucket === undefined) {
      this.countLoss("delivery_failed", file.lines.length);
      this.options.log.error(
        { distributionId: file.distributionId, bucket: info.logBucketDomain },
        "Logging.Bucket names no bucket; expected <bucket>.s3.amazonaws.com",
      );
      return;
    }
    const key = logFileKey(info.logPrefix, file.distributionId, file.hourStartMs, uniqueId);
    await this.upload({ bucket: info.logBucket, key, body, records: file.lines.length });
  }

  /** Uploads one file; on failure keeps it for the next rotation unless that would pass the byte bound. */
  private async upload(file: RetainedFile): Promise<void> {
    try {
      await this.options.upload(file.bucket, file.key, file.body);
      this.delivered += 1;
      this.options.log.debug({ bucket: file.bucket, key: file.key, records: file.records }, "access log file delivered");
    } catch (error) {
      this.deliveryFailures += 1;
      if (this.bufferedBytes + file.body.length > this.limits.maxBufferedBytes) {
        this.countLoss("delivery_failed", file.records);
        this.options.log.error(
          { err: error, bucket: file.bucket, key: file.key, records: file.records },
          "access log upload failed and the buffer is full; the file is dropped",
        );
        return;
      }
      this.retained.push(file);
      this.bufferedBytes += file.body.length;
      this.options.log.warn(
        { err: error, bucket: file.bucket, key: file.key, records: file.records },
        "access log upload failed; retrying at the next rotation",
      );
    }
  }

  private countLoss(reason: LossReason, records: number): void {
    this.lost[reason] += records;
    this.lostSinceWarning += records;
  }

  /** Logs lost records at most once a minute, unless `force`. */
  private warnLoss(force: boolean): void {
    if (this.lostSinceWarning === 0) return;
    const nowMs = this.now();
    if (!force && nowMs - this.lastWarningMs < LOSS_WARNING_INTERVAL_MS) return;
    this.options.log.warn({ lostRecords: this.lostSinceWarning, lostByReason: { ...this.lost } }, "access log records lost");
    this.lostSinceWarning = 0;
    this.lastWarningMs = nowMs;
  }
}

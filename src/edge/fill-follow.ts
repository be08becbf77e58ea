import { once } from "node:events";
import { open, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import type { WriteProgress } from "../cache/disk.js";
import type { FillResponse } from "../cluster/peers.js";
import { purgeEpoch, type EdgeContext } from "./context.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { cacheStatus } from "./headers.js";
import { rangeToServe, streamUncached } from "./respond.js";
import { closeThenCallback } from "../common/file-handle.js";
import type { CompiledHeadersPolicy } from "./response-headers.js";

/**
 * A large object that one request is fetching and writing to the disk tier
 * as it arrives. Its viewers, and other misses for the same key, read the
 * file as it grows instead of fetching the object again.
 */
export interface StreamingFill extends FillResponse {
  progress: WriteProgress;
  /** The distribution's purge counter when the fetch began; a purge since makes the write unusable. */
  purgeEpoch: number;
  /** Ends the fetch and the write, as when the edge shuts down. */
  abort(): void;
}

/** Bytes read from the file at a time. */
const READ_BYTES = 64 * 1024;

/** Opens the file of a write in progress, which its publication may have renamed meanwhile. */
async function openFollowed(progress: WriteProgress): Promise<FileHandle> {
  for (;;) {
    const path = progress.path;
    try {
      return await open(path, "r");
    } catch (error) {
      // The rename and the record of the new path happen one after the other, so the old path may
      // be gone before the new one is known. The write's next change records it.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || progress.state === "failed") throw error;
      if (progress.path === path) await once(progress, "change");
    }
  }
}

/**
 * The body of a write in progress, read from its file as the write puts the
 * bytes there. It ends once it has read the whole body, and fails when the
 * write fails before that, as the origin's body would for the writer.
 */
class FollowingBody extends Readable {
  private handle: FileHandle | undefined;
  private position = 0;
  private reading = false;
  private ended = false;
  /** Whether the stream requested more data while a read was still running. */
  private readRequestedAgain = false;

  /** The position in the body after the last byte to read. */
  private readonly end: number;

  /** Reads the bytes from position `start` up to `end` (exclusive), or to the end of the body. */
  constructor(
    private readonly progress: WriteProgress,
    start: number,
    end: number | undefined,
  ) {
    super({ highWaterMark: READ_BYTES });
    this.position = start;
    this.end = Math.min(end ?? progress.bodyBytes, progress.bodyBytes);
  }

  override _construct(callback: (error?: Error | null) => void): void {
    openFollowed(this.progress).then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _read(): void {
    if (this.reading) {
      // A push can make the stream call _read again before the read that pushed has returned.
      this.readRequestedAgain = true;
      return;
    }
    this.reading = true;
    this.readNext().then(
      () => {
        this.reading = false;
        if (!this.readRequestedAgain) return;
        this.readRequestedAgain = false;
        this._read();
      },
      (error: Error) => this.destroy(error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    closeThenCallback(handle, error, callback);
  }

  private async readNext(): Promise<void> {
    const progress = this.progress;
    for (;;) {
      if (this.destroyed || this.ended || this.handle === undefined) return;
      if (this.position >= this.end) {
        this.ended = true;
        this.push(null);
        return;
      }
      const available = Math.min(progress.writtenBodyBytes, this.end) - this.position;
      if (available > 0) {
        const buffer = Buffer.allocUnsafe(Math.min(available, READ_BYTES));
        const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, progress.bodyOffset + this.position);
        if (bytesRead === 0) throw new Error(`reading ${progress.path} failed: the file ended before the bytes written to it`);
        this.position += bytesRead;
        this.push(buffer.subarray(0, bytesRead));
        return;
      }
      if (progress.state !== "writing") {
        throw new Error("the origin fetch that this response follows ended before the whole body");
      }
      await once(progress, "change");
    }
  }
}

/** Records a write that later misses of `key` may follow, until the write ends. */
export function registerFill(context: EdgeContext, key: string, fill: StreamingFill): void {
  context.fills.set(key, fill);
  const forget = (): void => {
    if (fill.progress.state === "writing") return;
    fill.progress.off("change", forget);
    if (context.fills.get(key) === fill) context.fills.delete(key);
  };
  fill.progress.on("change", forget);
}

/**
 * Returns the write of `key` in progress that a request may follow: a GET or
 * HEAD, for a write that has not failed and that no purge has overtaken
 * since it began.
 */
export function liveFill(context: EdgeContext, key: string, request: ViewerRequest): StreamingFill | undefined {
  const fill = context.fills.get(key);
  if (fill === undefined || fill.progress.state === "failed") return undefined;
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  return purgeEpoch(context, fill.distributionId) === fill.purgeEpoch ? fill : undefined;
}

/**
 * Returns the body of a write in progress, or the bytes from position `start`
 * up to `end` (exclusive), read from its file as it grows.
 */
export function fillBody(progress: WriteProgress, start = 0, end?: number): Readable {
  const body = new FollowingBody(progress, start, end);
  // A response that needs no body destroys it unread, and a failure to open the file must not
  // then end the process. Consumers that read the body still get the error.
  body.on("error", () => {});
  return body;
}

/**
 * Serves a GET or HEAD miss from a large object that another request is
 * writing to the disk tier, as a collapsed hit. A single range is read from
 * its first byte on. Returns false, having sent nothing, when the write has
 * already failed, so the caller fetches the object itself. With
 * `aheadBytes`, it also returns false for a range that starts more than that
 * many bytes past what the write has reached, which the caller fetches from
 * the origin sooner than the write would get there.
 */
export async function followFill(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  fill: StreamingFill,
  policy: CompiledHeadersPolicy | undefined,
  aheadBytes = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  const progress = fill.progress;
  if (progress.state === "failed") return false;
  const range = rangeToServe(request, fill.status, fill.headers, progress.bodyBytes);
  const bodyStart = range.kind === "partial" ? range.start : 0;
  if (bodyStart > progress.writtenBodyBytes + aheadBytes) return false;
  const ageSeconds = fill.initialAgeSeconds + Math.max(0, Math.floor((Date.now() - fill.receivedAtMs) / 1000));
  const body = range.kind === "partial" ? fillBody(progress, range.start, range.end + 1) : fillBody(progress);
  await streamUncached(
    context,
    state,
    request,
    response,
    { status: fill.status, headers: fill.headers.slice(), body, contentLength: progress.bodyBytes, bodyStart },
    cacheStatus.collapsed("uri-miss", fill.status, fill.ttlSeconds - ageSeconds),
    policy,
    { ageSeconds },
  );
  return true;
}

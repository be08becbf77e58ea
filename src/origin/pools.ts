import { errors, Pool } from "undici";
import type { Readable } from "node:stream";
import { relayOriginBody, UNDICI_BODY_HIGH_WATER_MARK } from "./body-relay.js";
import { originConnector } from "./early-response.js";
import { OriginError, type OriginResponse } from "./types.js";

export interface PoolSettings {
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** Connection pools to origins, one per scheme, host and port, shared by every distribution. */
export class OriginPools {
  private readonly pools = new Map<string, Pool>();

  /** Returns the pool for `origin` (`scheme://host:port`), creating it with `settings` on first use. */
  get(origin: string, settings: PoolSettings): Pool {
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connect: originConnector(settings.connectTimeoutMs),
        keepAliveTimeout: settings.keepAliveTimeoutMs,
        connections: 128,
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((pool) => pool.close()));
  }
}

export interface PooledRequest {
  method: string;
  /** Path and query, as sent on the request line. */
  target: string;
  headers: Record<string, string>;
  body: Readable | undefined;
  readTimeoutMs: number;
  /** ConnectionTimeout; with readTimeoutMs it bounds the whole wait for a response head, queueing included. */
  connectTimeoutMs: number;
  /** Tries for connection failures; requests with a body are tried once. */
  connectionAttempts: number;
}

function isConnectFailure(error: unknown): boolean {
  if (error instanceof errors.ConnectTimeoutError) return true;
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EHOSTUNREACH" || code === "ENOTFOUND";
}

function toOriginError(error: unknown, origin: string): OriginError {
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) {
    return new OriginError("timeout", `origin ${origin} did not respond in time`, { cause: error });
  }
  if (error instanceof errors.ConnectTimeoutError) {
    return new OriginError("timeout", `connecting to origin ${origin} timed out`, { cause: error });
  }
  if (isConnectFailure(error)) {
    // A reset can arrive after the request was sent, so its message does not claim a failed connect.
    const reset = (error as NodeJS.ErrnoException).code === "ECONNRESET";
    const message = reset ? `origin ${origin} reset the connection` : `cannot connect to origin ${origin}`;
    return new OriginError("connect", message, { cause: error });
  }
  return new OriginError("protocol", `origin ${origin} failed: ${(error as Error).message}`, { cause: error });
}

/**
 * Returns the status a viewer gets for an origin request that failed: 504 for a timeout, also
 * one while the body was read, and 502 otherwise.
 */
export function viewerStatusOf(error: unknown): number {
  return (error instanceof OriginError ? error : toOriginError(error, "")).viewerStatus;
}

function ignoreBodyError(): void {}

/** Sends a request through `pool`, retrying connection failures, and maps failures to OriginError. */
export async function sendPooled(pool: Pool, origin: string, request: PooledRequest): Promise<OriginResponse> {
  const attempts = request.body === undefined ? Math.max(1, request.connectionAttempts) : 1;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const startedAtMs = performance.now();
    // undici's timeouts start once a connection takes the request, and an abort signal acts
    // only then too, so a request queued behind a busy pool would wait without limit. This
    // deadline covers the whole wait for the response head; the queued request aborts itself
    // when it reaches a connection.
    const deadline = new AbortController();
    let deadlineTimer: NodeJS.Timeout | undefined;
    let answered = false;
    const deadlinePassed = new Promise<never>((_resolve, reject) => {
      const arm = (limitMs: number): void => {
        // An origin may respond before the upload ends; its response is not timed out then.
        if (answered) return;
        deadlineTimer = setTimeout(() => {
          const error = new OriginError("timeout", `origin ${origin} did not respond in time`);
          deadline.abort(error);
          reject(error);
        }, limitMs);
        deadlineTimer.unref();
      };
      // The wait for the response to an upload starts once the body is sent, as CloudFront's
      // response timeout does, so an upload that takes longer than the timeout still gets its
      // response. Its connection exists by then, so only the read timeout is left. The viewer's
      // body idle timeout bounds an upload that stops.
      const upload = request.body;
      if (upload === undefined || upload.readableEnded) arm(request.connectTimeoutMs + request.readTimeoutMs);
      else upload.once("end", () => arm(request.readTimeoutMs));
    });
    try {
      const pending = pool.request({
        method: request.method as "GET",
        path: request.target,
        headers: request.headers,
        body: request.body ?? null,
        // undici counts its head timeout from the start of the request, upload included.
        headersTimeout: request.body === undefined ? request.readTimeoutMs : 0,
        bodyTimeout: request.readTimeoutMs,
        highWaterMark: UNDICI_BODY_HIGH_WATER_MARK,
        signal: deadline.signal,
      });
      // A response that arrives after the deadline is let go.
      pending.then(
        (late) => {
          if (!deadline.signal.aborted) return;
          late.body.on("error", ignoreBodyError);
          late.body.destroy();
        },
        () => {},
      );
      const response = await Promise.race([pending, deadlinePassed]);
      answered = true;
      clearTimeout(deadlineTimer);
      const body = relayOriginBody(response.body, response.headers);
      // undici's body emits RequestAbortedError when it is destroyed before its end, and the
      // relay passes that on, as when the edge discards a body (an error body replaced by a
      // custom error page, a HEAD response, a viewer that left). undici listens itself only
      // while the response is still arriving, and Node ends the process on an 'error' event
      // with no listener, so one is always attached here. Readers still get the error through
      // their own listeners, iterators and pipelines.
      body.on("error", ignoreBodyError);
      return {
        status: response.statusCode,
        headers: response.headers,
        body,
        firstByteLatencyMs: performance.now() - startedAtMs,
      };
    } catch (error) {
      answered = true;
      clearTimeout(deadlineTimer);
      lastError = deadline.signal.aborted ? deadline.signal.reason : error;
      if (!isConnectFailure(error)) break;
    }
  }
  if (lastError instanceof OriginError) throw lastError;
  throw toOriginError(lastError, origin);
}

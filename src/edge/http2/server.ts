import type { Socket } from "node:net";
import type { Logger } from "../../common/logger.js";
import type { MetricsSink } from "../../metrics/types.js";
import type { RequestListener } from "../http1/connection.js";
import type { Http1ServerOptions } from "../http1/server.js";
import { Http2Connection, type Http2Limits } from "./connection.js";

/** How often the sweep runs, which is also the period of the flood counters. */
const SWEEP_INTERVAL_MS = 1_000;
/** How long an HTTP/2 connection may stay without open streams (CloudFront's viewer keep-alive). */
const HTTP2_IDLE_TIMEOUT_MS = 5_000;
/** Streams one HTTP/2 connection may have open at once. */
const HTTP2_MAX_CONCURRENT_STREAMS = 128;

/** Returns the HTTP/2 limits that go with a front end's HTTP/1.1 limits and timeouts. */
export function http2LimitsOf(options: Http1ServerOptions): Http2Limits {
  return {
    maxHeaderListBytes: options.limits.maxHeadBytes,
    maxConcurrentStreams: HTTP2_MAX_CONCURRENT_STREAMS,
    idleTimeoutMs: HTTP2_IDLE_TIMEOUT_MS,
    headersTimeoutMs: options.timeouts.headersTimeoutMs,
    bodyIdleTimeoutMs: options.timeouts.bodyIdleTimeoutMs,
  };
}

/**
 * The HTTP/2 connections of one listener: those that negotiated h2 on the
 * TLS port, or those that started with the connection preface on the plain
 * port (h2c). One sweep a second ends idle connections and stalled header
 * blocks or bodies, and starts the per-second flood budgets over, so the
 * request path arms no timer.
 */
export class Http2ConnectionSet {
  private readonly connections = new Set<Http2Connection>();
  private readonly sweeper: NodeJS.Timeout;
  private draining = false;

  constructor(
    private readonly listener: RequestListener,
    private readonly limits: Http2Limits,
    private readonly log: Logger,
    /** Counts the connections closed as floods. */
    private readonly metrics?: MetricsSink,
  ) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /**
   * Takes over a TLS socket whose ALPN protocol is h2 (`https`), or a plain
   * socket whose first bytes, `received`, start with the connection preface
   * (`http`).
   */
  accept(socket: Socket, protocol: "http" | "https", received?: Buffer): void {
    const connection = new Http2Connection(
      socket,
      protocol,
      this.listener,
      this.limits,
      this.log,
      (closed) => this.connections.delete(closed),
      (kind) => this.metrics?.countHttp2Flood?.(kind),
    );
    this.connections.add(connection);
    if (received !== undefined) connection.receive(received);
    // A TLS handshake that completes after the drain began still gets its GOAWAY.
    if (this.draining) connection.drain();
  }

  /** Sends GOAWAY on every connection and waits for their streams, then drops what remains after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    for (const connection of this.connections) connection.drain();
    const deadlineMs = Date.now() + timeoutMs;
    while (this.connections.size > 0 && Date.now() < deadlineMs) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const connection of this.connections) connection.destroy();
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const nowMs = Date.now();
    for (const connection of this.connections) connection.sweep(nowMs, true);
  }
}

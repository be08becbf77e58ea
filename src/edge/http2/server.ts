import type { TLSSocket } from "node:tls";
import type { Logger } from "../../common/logger.js";
import type { RequestListener } from "../http1/connection.js";
import { Http2Connection, type Http2Limits } from "./connection.js";

/** How often the sweep runs, which is also the period of the flood counters. */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * The HTTP/2 connections of the TLS listener. One sweep a second ends idle
 * connections and stalled header blocks or bodies, and starts the flood
 * counters over, so the request path arms no timer.
 */
export class Http2ConnectionSet {
  private readonly connections = new Set<Http2Connection>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly listener: RequestListener,
    private readonly limits: Http2Limits,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /** Takes over a TLS socket whose ALPN protocol is h2. */
  accept(socket: TLSSocket): void {
    const connection = new Http2Connection(socket, this.listener, this.limits, this.log, (closed) =>
      this.connections.delete(closed),
    );
    this.connections.add(connection);
  }

  /** Sends GOAWAY on every connection and waits for their streams, then drops what remains after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
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

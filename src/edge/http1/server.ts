import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../common/logger.js";
import type { MetricsSink } from "../../metrics/types.js";
import type { ConnectionGate, ConnectionMover } from "../balance.js";
import { listenOn } from "../listen.js";
import { Http2ConnectionSet, http2LimitsOf } from "../http2/server.js";
import { Http1Connection, type Http1Timeouts, type Http2PrefaceHandler, type RequestListener } from "./connection.js";
import { DEFAULT_HTTP1_LIMITS, type Http1Limits } from "./parser.js";

export interface Http1ServerOptions {
  limits: Http1Limits;
  timeouts: Http1Timeouts;
  /** How long close() lets responses in flight finish before it drops their connections. */
  drainTimeoutMs: number;
}

/** Defaults: CloudFront's 5 s viewer keep-alive, and header and body limits in the range nginx uses. */
export const DEFAULT_HTTP1_OPTIONS: Http1ServerOptions = {
  limits: DEFAULT_HTTP1_LIMITS,
  timeouts: { headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, bodyIdleTimeoutMs: 30_000 },
  drainTimeoutMs: 10_000,
};

/**
 * The connections of one HTTP/1.1 front end, plain or behind TLS. A sweep
 * checks every connection's deadline a few times per timeout instead of
 * arming a timer per request, which keeps timers off the hit path.
 */
export class Http1ConnectionSet {
  private readonly connections = new Set<Http1Connection>();
  private readonly sweeper: NodeJS.Timeout;
  private draining = false;

  constructor(
    private readonly listener: RequestListener,
    private readonly options: Http1ServerOptions,
    private readonly log: Logger,
    /** Takes over connections that start with the HTTP/2 preface. Only the plain port has one. */
    private readonly onHttp2Preface?: Http2PrefaceHandler,
    /** In an edge worker, on the plain port: moves idle connections to other workers. */
    private readonly mover?: ConnectionMover,
  ) {
    const { headersTimeoutMs, keepAliveTimeoutMs, bodyIdleTimeoutMs } = options.timeouts;
    const sweepMs = Math.min(1000, Math.max(20, Math.min(headersTimeoutMs, keepAliveTimeoutMs, bodyIdleTimeoutMs) / 4));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /** Takes over a connected socket, plain or TLS. */
  accept(socket: Socket, protocol: "http" | "https"): void {
    const connection = new Http1Connection(
      socket,
      protocol,
      this.listener,
      this.options.limits,
      this.options.timeouts,
      this.log,
      (closed) => this.connections.delete(closed),
      this.onHttp2Preface,
      this.mover,
    );
    this.connections.add(connection);
    // A TLS handshake that completes after the drain began is closed like the other idle connections.
    if (this.draining) connection.drain();
  }

  /** Closes idle connections now and the others after their response; drops what remains after the drain timeout. */
  async drain(): Promise<void> {
    this.draining = true;
    for (const connection of this.connections) connection.drain();
    const deadlineMs = Date.now() + this.options.drainTimeoutMs;
    while (this.connections.size > 0 && Date.now() < deadlineMs) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const connection of this.connections) connection.destroy();
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const nowMs = Date.now();
    for (const connection of this.connections) {
      if (connection.deadlineMs <= nowMs) connection.timedOut();
    }
  }
}

/**
 * The edge's plain HTTP listener: a `net` server feeding the strict HTTP/1.1
 * connection. A connection that starts with the HTTP/2 preface goes to the
 * edge's HTTP/2 server instead (h2c with prior knowledge, RFC 9113 section
 * 3.3), and its requests are plain HTTP like the others. The HTTP/1.1
 * `Upgrade: h2c` mechanism, which RFC 9113 deprecates, is not offered: such
 * a request is served as HTTP/1.1.
 */
export class Http1Server {
  readonly server: Server;
  readonly connections: Http1ConnectionSet;
  readonly http2: Http2ConnectionSet;
  private readonly drainTimeoutMs: number;

  /**
   * `gate`, in an edge worker, may hand a new connection to another worker instead. `metrics`
   * counts the h2c connections closed as floods.
   */
  constructor(listener: RequestListener, options: Http1ServerOptions, log: Logger, gate?: ConnectionGate, metrics?: MetricsSink) {
    this.drainTimeoutMs = options.drainTimeoutMs;
    this.http2 = new Http2ConnectionSet(listener, http2LimitsOf(options), log, metrics);
    this.connections = new Http1ConnectionSet(
      listener,
      options,
      log,
      (socket, received) => this.http2.accept(socket, "http", received),
      gate,
    );
    // Sockets start paused, so that one handed to another worker has not been read from here.
    this.server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
      if (gate !== undefined && !gate.admit(socket, "http")) return;
      this.connections.accept(socket, "http");
      socket.resume();
    });
  }

  /** Serves a connection that another worker accepted and handed to this one. */
  adopt(socket: Socket): void {
    socket.setNoDelay(true);
    this.connections.accept(socket, "http");
  }

  /** `reusePort` binds a socket of this process's own with SO_REUSEPORT (listen.ts). */
  listen(port: number, host: string, reusePort = false): Promise<number> {
    return listenOn(this.server, port, host, reusePort);
  }

  /**
   * Stops accepting connections, lets responses in flight finish, sends GOAWAY
   * to h2c connections, then closes what remains. A connection whose preface
   * arrives during the drain is not handed to HTTP/2: it gets 505 like any
   * request with an unsupported version.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([this.connections.drain(), this.http2.drain(this.drainTimeoutMs)]);
    await closed;
  }
}

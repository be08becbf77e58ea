import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Logger } from "../../common/logger.js";
import { Http1Connection, type Http1Timeouts, type RequestListener } from "./connection.js";
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

  constructor(
    private readonly listener: RequestListener,
    private readonly options: Http1ServerOptions,
    private readonly log: Logger,
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
    );
    this.connections.add(connection);
  }

  /** Closes idle connections now and the others after their response; drops what remains after the drain timeout. */
  async drain(): Promise<void> {
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

/** Listens on `host:port` and returns the bound port (the chosen one when `port` is 0). */
export async function listenOn(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** The edge's plain HTTP listener: a `net` server feeding the strict HTTP/1.1 connection. */
export class Http1Server {
  readonly server: Server;
  readonly connections: Http1ConnectionSet;

  constructor(listener: RequestListener, options: Http1ServerOptions, log: Logger) {
    this.connections = new Http1ConnectionSet(listener, options, log);
    this.server = createServer({ noDelay: true }, (socket) => this.connections.accept(socket, "http"));
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host);
  }

  /** Stops accepting connections, lets responses in flight finish, then closes what remains. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.connections.drain();
    await closed;
  }
}

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import type { Logger } from "../common/logger.js";
import type { ViewerRequest, ViewerResponse } from "./exchange.js";

/** How long idle viewer connections stay open, as CloudFront's default viewer keep-alive. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** How long close() waits for responses in flight before it drops their connections. */
const DRAIN_TIMEOUT_MS = 10_000;

export type RequestListener = (request: ViewerRequest, response: ViewerResponse) => Promise<void>;

/** Adapts node:http's ServerResponse to ViewerResponse and counts the bytes written for it. */
class NodeViewerResponse implements ViewerResponse {
  private socket: Socket | undefined;
  private bytesAtStart = 0;

  constructor(private readonly raw: ServerResponse) {
    // A pipelined response gets its socket only when the one before it is
    // done, and node:http detaches it again on finish, so keep a reference.
    if (raw.socket !== null) this.attach(raw.socket);
    else raw.once("socket", (socket: Socket) => this.attach(socket));
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.bytesAtStart = socket.bytesWritten;
  }

  send(status: number, headers: readonly string[], body: Buffer | undefined): void {
    this.raw.writeHead(status, headers as string[]);
    this.raw.end(body);
  }

  async stream(status: number, headers: readonly string[], body: Readable): Promise<void> {
    this.raw.writeHead(status, headers as string[]);
    try {
      await pipeline(body, this.raw);
    } catch {
      // The viewer went away or the origin broke off; either way the connection
      // cannot carry a complete response any more.
      this.raw.destroy();
    }
  }

  onDone(listener: (bytesSent: number) => void): void {
    let called = false;
    const done = (): void => {
      if (called) return;
      called = true;
      listener(this.socket === undefined ? 0 : this.socket.bytesWritten - this.bytesAtStart);
    };
    this.raw.once("finish", done);
    this.raw.once("close", done);
  }
}

function toViewerRequest(raw: IncomingMessage, protocol: "http" | "https"): ViewerRequest {
  const startedAt = performance.now();
  let target = raw.url ?? "/";
  if (!target.startsWith("/") && target !== "*") {
    // Absolute-form (RFC 9112 section 3.2.2): keep only the path and query.
    try {
      const url = new URL(target);
      target = url.pathname + url.search;
    } catch {
      target = "/";
    }
  }
  const queryStart = target.indexOf("?");
  return {
    method: raw.method ?? "GET",
    target,
    path: queryStart < 0 ? target : target.slice(0, queryStart),
    rawQuery: queryStart < 0 ? "" : target.slice(queryStart + 1),
    headers: raw.headers,
    protocol,
    httpVersion: `HTTP/${raw.httpVersion}`,
    clientIp: raw.socket.remoteAddress ?? "",
    body: raw,
    startedAt,
  };
}

/** An HTTP or HTTPS listener built on node:http that feeds a RequestListener. */
export class NodeEdgeServer {
  readonly server: Server;

  constructor(
    protocol: "http" | "https",
    listener: RequestListener,
    log: Logger,
    tls?: { key: string; cert: string },
  ) {
    const handle = (raw: IncomingMessage, response: ServerResponse): void => {
      listener(toViewerRequest(raw, protocol), new NodeViewerResponse(response)).catch((error: unknown) => {
        log.error({ err: error }, "edge request listener failed");
        response.destroy();
      });
    };
    this.server =
      protocol === "https"
        ? createHttpsServer({ key: tls!.key, cert: tls!.cert }, handle)
        : createHttpServer(handle);
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting connections, lets responses in flight finish, then closes what remains. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Keep-alive connections become idle one by one as their responses finish.
    const sweeper = setInterval(() => this.server.closeIdleConnections(), 50);
    const timer = setTimeout(() => this.server.closeAllConnections(), DRAIN_TIMEOUT_MS);
    this.server.closeIdleConnections();
    try {
      await closed;
    } finally {
      clearInterval(sweeper);
      clearTimeout(timer);
    }
  }
}

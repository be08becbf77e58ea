import { createPrivateKey } from "node:crypto";
import { createSecureContext, createServer as createTlsServer, type SecureContext, type Server, type TLSSocket } from "node:tls";
import type { Logger } from "../common/logger.js";
import type { RequestListener } from "./http1/connection.js";
import { Http1ConnectionSet, listenOn, type Http1ServerOptions } from "./http1/server.js";
import { Http2ConnectionSet } from "./http2/server.js";
import { loadAliasCertificates, type AliasCertificate } from "./tls.js";

/** How often an unknown SNI name may trigger a new read of the alias certificate folder. */
const ALIAS_RELOAD_INTERVAL_MS = 10_000;
/** How long an HTTP/2 connection may stay without open streams (CloudFront's viewer keep-alive). */
const HTTP2_IDLE_TIMEOUT_MS = 5_000;
/** Streams one HTTP/2 connection may have open at once. */
const HTTP2_MAX_CONCURRENT_STREAMS = 128;

/**
 * The edge's TLS listener. SNI picks an operator-supplied certificate for an
 * alternate domain name when one exists, else the zone's generated one; ALPN
 * picks HTTP/2 or HTTP/1.1, both served by the edge's own strict servers.
 */
export class SecureEdgeServer {
  readonly server: Server;
  private readonly http2: Http2ConnectionSet;
  private readonly http1: Http1ConnectionSet;
  private aliasContexts = new Map<string, SecureContext>();
  private aliasesLoadedAtMs = 0;
  private reloading: Promise<void> | undefined;
  private readonly drainTimeoutMs: number;
  /** The key type of the zone certificate (`ec` for the generated one), which alias keys must share. */
  private readonly zoneKeyType: string | undefined;

  constructor(
    tls: { key: string; cert: string },
    private readonly dataDir: string,
    listener: RequestListener,
    options: Http1ServerOptions,
    private readonly log: Logger,
  ) {
    this.drainTimeoutMs = options.drainTimeoutMs;
    this.zoneKeyType = createPrivateKey(tls.key).asymmetricKeyType;
    this.http1 = new Http1ConnectionSet(listener, options, log);
    this.http2 = new Http2ConnectionSet(
      listener,
      {
        maxHeaderListBytes: options.limits.maxHeadBytes,
        maxConcurrentStreams: HTTP2_MAX_CONCURRENT_STREAMS,
        idleTimeoutMs: HTTP2_IDLE_TIMEOUT_MS,
        headersTimeoutMs: options.timeouts.headersTimeoutMs,
        bodyIdleTimeoutMs: options.timeouts.bodyIdleTimeoutMs,
      },
      log,
    );

    this.server = createTlsServer({
      key: tls.key,
      cert: tls.cert,
      ALPNProtocols: ["h2", "http/1.1"],
      SNICallback: (servername, callback) => callback(null, this.contextFor(servername)),
    });
    this.server.on("secureConnection", (socket: TLSSocket) => {
      if (socket.alpnProtocol === "h2") this.http2.accept(socket);
      else this.http1.accept(socket, "https");
    });
    this.server.on("tlsClientError", () => {});
  }

  /** Loads the alias certificates; call before listen(). */
  async loadAliases(): Promise<void> {
    const certificates = await loadAliasCertificates(this.dataDir, this.log);
    const contexts = new Map<string, SecureContext>();
    for (const certificate of certificates) {
      const context = this.secureContext(certificate);
      if (context !== undefined) contexts.set(certificate.name, context);
    }
    this.aliasContexts = contexts;
    this.aliasesLoadedAtMs = Date.now();
    if (contexts.size > 0) this.log.info({ names: [...contexts.keys()] }, "loaded alias certificates");
  }

  private secureContext(certificate: AliasCertificate): SecureContext | undefined {
    try {
      const keyType = createPrivateKey(certificate.key).asymmetricKeyType;
      if (keyType !== this.zoneKeyType) {
        // Node.js adds an SNI context's certificate beside the default one instead of replacing it,
        // so a client that accepts both key types gets the zone's certificate.
        this.log.warn(
          { name: certificate.name, keyType, zoneKeyType: this.zoneKeyType },
          "an alias certificate whose key type differs from the zone certificate's reaches only clients without support for the zone's key type; use a key of the zone's type",
        );
      }
      return createSecureContext({ key: certificate.key, cert: certificate.cert });
    } catch (error) {
      this.log.warn({ err: error, name: certificate.name }, "skipped an invalid alias certificate");
      return undefined;
    }
  }

  /** Returns the alias context for an SNI name, or undefined for the default certificate. */
  private contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.aliasContexts.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf(".");
    const wildcard = dot < 0 ? undefined : this.aliasContexts.get(`*${name.slice(dot)}`);
    if (wildcard !== undefined) return wildcard;
    // A certificate added after start is picked up on a later handshake.
    if (this.reloading === undefined && Date.now() - this.aliasesLoadedAtMs > ALIAS_RELOAD_INTERVAL_MS) {
      this.aliasesLoadedAtMs = Date.now();
      this.reloading = this.loadAliases()
        .catch((error: unknown) => this.log.warn({ err: error }, "failed to reload alias certificates"))
        .finally(() => (this.reloading = undefined));
    }
    return undefined;
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host);
  }

  /** Stops accepting connections, sends GOAWAY to HTTP/2 sessions, and drains HTTP/1.1 connections. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([this.http2.drain(this.drainTimeoutMs), this.http1.drain()]);
    await closed;
  }
}

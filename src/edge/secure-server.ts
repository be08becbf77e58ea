import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type Server as TlsServer,
  type TLSSocket,
} from "node:tls";
import type { Logger } from "../common/logger.js";
import type { MetricsSink } from "../metrics/types.js";
import type { ConnectionGate } from "./balance.js";
import { scanClientHello } from "./client-hello.js";
import type { RequestListener } from "./http1/connection.js";
import { Http1ConnectionSet, type Http1ServerOptions } from "./http1/server.js";
import { Http2ConnectionSet, http2LimitsOf } from "./http2/server.js";
import { listenOn } from "./listen.js";
import { PLAIN_HTTP_RESPONSE, scanPlainRequest } from "./plain-http.js";
import { loadAliasCertificates, type AliasCertificate } from "./tls.js";
import { createNativeTlsContext, nativeTlsAvailable, NativeTlsSocket, type NativeTlsContext } from "./viewer-tls.js";

/**
 * The cipher suites of the TLS port: TLS 1.3, and the ECDHE suites with AEAD of Mozilla's
 * intermediate TLS 1.2 list. Node.js's default list also enables CBC suites and RSA key
 * exchange. Every suite here is strong, so the client's order decides, as with nginx's
 * default, and a client that lists AES-128-GCM first (nghttp2 does) skips the 4 extra rounds
 * per block of AES-256-GCM.
 */
const VIEWER_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");
const CIPHER_OPTIONS = { ciphers: VIEWER_CIPHERS, honorCipherOrder: false };

/** How often an unknown SNI name may trigger a new read of the alias certificate folder. */
const ALIAS_RELOAD_INTERVAL_MS = 10_000;
/** How long a drain lets a connection that has not sent its ClientHello yet send it. */
const GREETING_DRAIN_GRACE_MS = 1_000;

/** An operator-supplied certificate, ready for handshakes. */
interface AliasTls {
  context: SecureContext;
  /** A TLS server whose only certificate is this one; connections are handed to it, it never listens. */
  server: TlsServer;
  /** The same certificate for TLS in C (viewer-tls.ts), when this process has it. */
  native: NativeTlsContext | undefined;
}

/**
 * The edge's TLS listener. SNI picks an operator-supplied certificate for an
 * alternate domain name when one exists, else the zone's generated one; ALPN
 * picks HTTP/2 or HTTP/1.1, both served by the edge's own strict servers.
 *
 * The listener reads each connection's ClientHello itself and hands the
 * connection to a TLS server whose default certificate is the chosen one.
 * Node.js's SNICallback cannot replace a default certificate of another key
 * type: it adds the SNI certificate beside it, so a client that accepts both
 * types would get the zone's certificate instead of an RSA alias.
 */
export class SecureEdgeServer {
  readonly server: Server;
  private readonly zoneServer: TlsServer;
  private readonly http2: Http2ConnectionSet;
  private readonly http1: Http1ConnectionSet;
  private aliases = new Map<string, AliasTls>();
  private aliasesLoadedAtMs = 0;
  /** Digests of the alias pairs already reported as invalid, by name, so each is reported once. */
  private readonly reportedInvalid = new Map<string, string>();
  private reloading: Promise<void> | undefined;
  private readonly drainTimeoutMs: number;
  private readonly helloTimeoutMs: number;
  private readonly maxHeadBytes: number;
  /** Connections whose ClientHello is still arriving. */
  private readonly greeting = new Set<Socket>();
  /** The zone's certificate for TLS in C, when this process has it. */
  private readonly zoneNative: NativeTlsContext | undefined;
  private readonly nativeTls: boolean;

  constructor(
    tls: { key: string; cert: string },
    private readonly dataDir: string,
    listener: RequestListener,
    options: Http1ServerOptions,
    private readonly log: Logger,
    /** In an edge worker, may hand a new connection to another worker instead. */
    private readonly gate?: ConnectionGate,
    /** Counts the HTTP/2 connections closed as floods. */
    metrics?: MetricsSink,
    /** Whether handshakes run in C (viewer-tls.ts); by default whenever the addon is built. */
    nativeTls = nativeTlsAvailable,
  ) {
    this.nativeTls = nativeTls && nativeTlsAvailable;
    this.drainTimeoutMs = options.drainTimeoutMs;
    this.helloTimeoutMs = options.timeouts.headersTimeoutMs;
    this.maxHeadBytes = options.limits.maxHeadBytes;
    this.http1 = new Http1ConnectionSet(listener, options, log);
    this.http2 = new Http2ConnectionSet(listener, http2LimitsOf(options), log, metrics);

    // A ClientHello the listener could not read still reaches alias certificates of the zone's key type.
    this.zoneServer = this.tlsServer({
      key: tls.key,
      cert: tls.cert,
      SNICallback: (servername, callback) => callback(null, this.aliasFor(servername)?.context),
    });
    this.zoneNative = this.nativeContext(tls.cert, tls.key, "zone");
    // Sockets start paused, so that one handed to another worker has not been read from here.
    this.server = createNetServer({ pauseOnConnect: true }, (socket) => {
      if (this.gate === undefined || this.gate.admit(socket, "https")) this.greet(socket);
    });
  }

  private tlsServer(options: Parameters<typeof createTlsServer>[0]): TlsServer {
    // A client that sends its ClientHello and then stalls is dropped after the head timeout too.
    const server = createTlsServer({
      ...options,
      ALPNProtocols: ["h2", "http/1.1"],
      handshakeTimeout: this.helloTimeoutMs,
      ...CIPHER_OPTIONS,
    });
    server.on("secureConnection", (socket: TLSSocket) => {
      if (socket.alpnProtocol === "h2") this.http2.accept(socket, "https");
      else this.http1.accept(socket, "https");
    });
    // With a listener here, Node.js leaves the failed socket open; a timed-out handshake would stay.
    server.on("tlsClientError", (_error: Error, socket: TLSSocket) => socket.destroy());
    return server;
  }

  /** Returns a context for TLS in C, or undefined to use Node.js's TLS for this certificate. */
  private nativeContext(cert: string, key: string, name: string): NativeTlsContext | undefined {
    if (!this.nativeTls) return undefined;
    try {
      return createNativeTlsContext(cert, key, VIEWER_CIPHERS);
    } catch (error) {
      this.log.warn({ err: error, name }, "TLS in C cannot use this certificate; its handshakes use Node.js's TLS");
      return undefined;
    }
  }

  /** Runs the handshake of a connection in C, then serves it over HTTP/2 or HTTP/1.1 by ALPN. */
  private secureNatively(socket: Socket, context: NativeTlsContext, received: Buffer): void {
    let secure: NativeTlsSocket;
    try {
      secure = new NativeTlsSocket(socket);
    } catch (error) {
      this.log.warn({ err: error }, "could not start TLS in C on a viewer connection; closed it");
      socket.destroy();
      return;
    }
    // A client that sends its ClientHello and then stalls is dropped after the head timeout, as
    // Node.js's handshakeTimeout does.
    const timer = setTimeout(() => secure.destroy(), this.helloTimeoutMs);
    secure.once("close", () => clearTimeout(timer));
    secure.once("secure", () => {
      clearTimeout(timer);
      const viewer = secure as unknown as Socket;
      if (secure.alpnProtocol === "h2") this.http2.accept(viewer, "https");
      else this.http1.accept(viewer, "https");
    });
    secure.start(context, received);
  }

  /** Serves a connection that another worker accepted and handed to this one. */
  adopt(socket: Socket): void {
    this.greet(socket);
  }

  /**
   * Reads a new connection's ClientHello, then hands the connection to the TLS
   * server of its name. A plain HTTP/1.x request gets 400 instead.
   */
  private greet(socket: Socket): void {
    this.greeting.add(socket);
    const first = new FirstBytes();
    const ignoreError = (): void => {};
    socket.on("error", ignoreError);
    // The whole ClientHello must arrive within the head timeout, however it trickles in.
    let deadline = setTimeout(() => socket.destroy(), this.helloTimeoutMs);
    socket.once("close", () => {
      clearTimeout(deadline);
      this.greeting.delete(socket);
    });
    const onData = (chunk: Buffer): void => {
      const scannedBytes = first.length;
      const received = first.append(chunk);
      const scan = scanClientHello(received);
      if (scan.kind === "incomplete") return;
      if (scan.kind === "other") {
        const plain = scanPlainRequest(received, this.maxHeadBytes, scannedBytes);
        if (plain === "incomplete") return;
        if (plain === "head") {
          socket.off("data", onData);
          clearTimeout(deadline);
          deadline = this.rejectPlainRequest(socket);
          return;
        }
      }
      socket.off("data", onData);
      if (scan.kind === "oversized") {
        // Past the size read here, the certificate could not be chosen for the name.
        socket.destroy();
        return;
      }
      socket.pause();
      const name = scan.kind === "hello" ? scan.serverName : undefined;
      void this.tlsForName(name).then((tls) => {
        clearTimeout(deadline);
        this.greeting.delete(socket);
        if (socket.destroyed) return;
        // A ClientHello the listener could not read goes to Node.js's TLS, whose SNI callback
        // may still find the name.
        if (scan.kind === "hello" && tls.native !== undefined) {
          this.secureNatively(socket, tls.native, received);
          return;
        }
        // The TLS socket reads what was put back before anything else.
        socket.unshift(received);
        tls.server.emit("connection", socket);
      });
    };
    socket.on("data", onData);
    socket.resume();
  }

  /**
   * Sends 400 to a plain HTTP request and closes the connection. Bytes that
   * follow are read and dropped until the viewer closes too, because closing
   * with unread bytes would reset the connection and could destroy the
   * response before the viewer reads it. Returns the timer that destroys the
   * connection if the viewer keeps it open.
   */
  private rejectPlainRequest(socket: Socket): NodeJS.Timeout {
    socket.end(PLAIN_HTTP_RESPONSE, "latin1");
    socket.resume();
    return setTimeout(() => socket.destroy(), this.helloTimeoutMs);
  }

  /**
   * Returns the TLS server and the context in C for a ClientHello's server name. A name without a
   * pair waits for the reload of the alias folder that it starts, so a pair
   * added while the edge runs serves the first handshake that names it.
   */
  private async tlsForName(name: string | undefined): Promise<{ server: TlsServer; native: NativeTlsContext | undefined }> {
    const zone = { server: this.zoneServer, native: this.zoneNative };
    if (name === undefined) return zone;
    const found = this.aliasFor(name);
    if (found !== undefined) return found;
    if (this.reloading === undefined) return zone;
    await this.reloading;
    return this.aliasFor(name) ?? zone;
  }

  /** Loads the alias certificates; call before listen(). */
  async loadAliases(): Promise<void> {
    const certificates = await loadAliasCertificates(this.dataDir, this.log);
    const aliases = new Map<string, AliasTls>();
    for (const certificate of certificates) {
      const alias = this.aliasTls(certificate);
      if (alias !== undefined) aliases.set(certificate.name, alias);
    }
    this.aliases = aliases;
    this.aliasesLoadedAtMs = Date.now();
    if (aliases.size > 0) this.log.info({ names: [...aliases.keys()] }, "loaded alias certificates");
  }

  private aliasTls(certificate: AliasCertificate): AliasTls | undefined {
    try {
      // OpenSSL takes a key of another type than the certificate's without complaint, and every
      // handshake for the name then fails, so the pair is checked here.
      if (!new X509Certificate(certificate.cert).checkPrivateKey(createPrivateKey(certificate.key))) {
        throw new Error("the private key does not match the certificate");
      }
      // The fallback path hands this context to a connection that the zone server began, so it
      // gets the same suites.
      const context = createSecureContext({ key: certificate.key, cert: certificate.cert, ...CIPHER_OPTIONS });
      const server = this.tlsServer({ key: certificate.key, cert: certificate.cert });
      return { context, server, native: this.nativeContext(certificate.cert, certificate.key, certificate.name) };
    } catch (error) {
      // The folder is read again every few seconds while a name lacks a pair, so an unchanged
      // invalid pair is reported once.
      const digest = createHash("sha256").update(certificate.cert).update(certificate.key).digest("hex");
      if (this.reportedInvalid.get(certificate.name) !== digest) {
        this.reportedInvalid.set(certificate.name, digest);
        this.log.warn({ err: error, name: certificate.name }, "skipped an invalid alias certificate");
      }
      return undefined;
    }
  }

  /**
   * Returns the alias certificate for an SNI name, or undefined for the zone's.
   * A fully qualified name with a trailing dot selects the same certificate as
   * the name without it, as Host routing treats the two alike.
   */
  private aliasFor(servername: string): AliasTls | undefined {
    const lowerCase = servername.toLowerCase();
    const name = lowerCase.endsWith(".") ? lowerCase.slice(0, -1) : lowerCase;
    const exact = this.aliases.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf(".");
    const wildcard = dot < 0 ? undefined : this.aliases.get(`*${name.slice(dot)}`);
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
    // A connection accepted just before the drain may be about to send its ClientHello and a
    // request, so it gets a moment to, as a plain connection gets for its first request.
    const greeting = [...this.greeting];
    const lateTimer = setTimeout(() => {
      for (const socket of greeting) if (this.greeting.has(socket)) socket.destroy();
    }, GREETING_DRAIN_GRACE_MS);
    lateTimer.unref();
    await Promise.all([this.http2.drain(this.drainTimeoutMs), this.http1.drain()]);
    await closed;
  }
}

/**
 * The first bytes of a connection, in one buffer that doubles as it fills. A
 * ClientHello or head sent a byte at a time thus costs copies in proportion
 * to its length, where joining all chunks again on each read would cost the
 * square of it.
 */
class FirstBytes {
  private storage: Buffer = Buffer.alloc(0);
  /** Bytes received so far. */
  length = 0;

  /** Adds `chunk` and returns all the bytes received so far. */
  append(chunk: Buffer): Buffer {
    if (this.length === 0) {
      // The usual case: the whole ClientHello in the first read, used without a copy.
      this.storage = chunk;
      this.length = chunk.length;
      return chunk;
    }
    // A lent first chunk is full, so the second chunk always moves the bytes to a buffer of their own.
    if (this.length + chunk.length > this.storage.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.storage.length, this.length + chunk.length, 1024));
      this.storage.copy(grown, 0, 0, this.length);
      this.storage = grown;
    }
    chunk.copy(this.storage, this.length);
    this.length += chunk.length;
    return this.storage.subarray(0, this.length);
  }
}

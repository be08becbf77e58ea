import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { loadNativePart } from "./native.js";

/**
 * Viewer TLS in C: `native/viewer-tls.c` runs OpenSSL on the connection's descriptor, and
 * JavaScript handles plaintext only. A TLS socket of Node.js passes each record through its
 * stream layers and several calls between C++ and JavaScript. On a 2-core Intel machine, a bare
 * HTTP/2 server responding to 1 KiB requests used 9.8 µs of CPU per request over Node.js's TLS,
 * as much as nginx, and 7.4 µs over this transport (bench/edge/h2-cpu.sh).
 *
 * `npm install` builds it next to `native/send-body.c`. Without it, or with
 * `PORTICO_NO_NATIVE_TLS=1`, the TLS port uses Node.js's TLS.
 */

/** A TLS context in C, with one certificate and its key. */
export type NativeTlsContext = { readonly nativeTlsContext: unique symbol };
type ConnectionHandle = { readonly nativeTlsConnection: unique symbol };

interface ViewerTlsAddon {
  createContext(certPem: string, keyPem: string, cipherList: string, cipherSuites: string): NativeTlsContext;
  setHandler(handler: (owner: NativeTlsSocket, event: number, value: number) => void): void;
  readBuffer(): Buffer;
  adopt(context: NativeTlsContext, fd: number, firstBytes: Buffer | undefined, owner: NativeTlsSocket): ConnectionHandle;
  write(connection: ConnectionHandle, buffers: Buffer[]): number;
  pause(connection: ConnectionHandle): void;
  resume(connection: ConnectionHandle): boolean;
  pump(connection: ConnectionHandle): void;
  end(connection: ConnectionHandle): void;
  destroy(connection: ConnectionHandle): void;
  details(connection: ConnectionHandle): [protocol?: string, cipher?: string, fd?: number, bytesRead?: number];
  pendingBytes(connection: ConnectionHandle): number;
}

// The event numbers of native/viewer-tls.c.
const EVENT_SECURE = 1;
const EVENT_DATA = 2;
const EVENT_DRAIN = 3;
const EVENT_END = 4;
const EVENT_CLOSE = 5;
const CLOSE_NORMAL = 0;
const ALPN_H2 = 1;
const ALPN_HTTP1 = 2;

/** Node.js's default writableHighWaterMark of a socket: write() returns false past it. */
const HIGH_WATER_MARK = 16 * 1024;

const addon = loadNativePart<ViewerTlsAddon>("viewer_tls", "PORTICO_NO_NATIVE_TLS");
let readBuffer: Buffer | undefined;

if (addon !== undefined) {
  readBuffer = addon.readBuffer();
  addon.setHandler((owner, event, value) => owner.onNativeEvent(event, value));
}

/** Whether viewer TLS runs in C in this process. */
export const nativeTlsAvailable = addon !== undefined;

/**
 * Creates a context for `cert` and `key`, with the cipher suites of `ciphers` (OpenSSL's
 * names, TLS 1.3 suites among them). Throws when the pair is invalid or the addon is missing.
 */
export function createNativeTlsContext(cert: string, key: string, ciphers: string): NativeTlsContext {
  if (addon === undefined) throw new Error("native TLS is not available: build/Release/viewer_tls.node was not built or PORTICO_NO_NATIVE_TLS=1");
  const names = ciphers.split(":");
  const suites = names.filter((name) => name.startsWith("TLS_")).join(":");
  const list = names.filter((name) => !name.startsWith("TLS_")).join(":");
  return addon.createContext(cert, key, list, suites);
}

/**
 * A viewer connection whose TLS runs in C, with the parts of `net.Socket` and `tls.TLSSocket`
 * that the edge's HTTP/1.1 and HTTP/2 connections use. It emits "secure" once the handshake is
 * done, then "data" (unless a shared-buffer reader is set), "drain", "end" and "close".
 *
 * The plain socket it came from stays open and paused beside it and is destroyed with it, so
 * the connection counts of the listener and the worker balance see one connection from accept
 * to close. Reading and writing go through a duplicate of its descriptor.
 */
export class NativeTlsSocket extends EventEmitter {
  readonly encrypted = true;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  alpnProtocol: string | false = false;
  allowHalfOpen = false;
  destroyed = false;
  bytesRead = 0;
  private handle: ConnectionHandle | undefined;
  private readonly rawFd: number;
  private corked = 0;
  private corkedBuffers: Buffer[] = [];
  private corkedBytes = 0;
  /** Bytes that C held unsent after the last write, refreshed whenever writableLength is read. */
  private pendingKnown = 0;
  private needDrain = false;
  private flushWaiters: Array<(error?: Error | null) => void> = [];
  private onRead: ((bytes: number, buffer: Buffer) => void) | undefined;
  private pumpScheduled = false;
  private ended = false;
  private details: ReturnType<ViewerTlsAddon["details"]> | undefined;

  /** Wraps `raw`'s connection; start() begins the handshake once the caller listens for "secure". */
  constructor(private readonly raw: Socket) {
    super();
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    const fd = (raw as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
    if (addon === undefined || typeof fd !== "number" || fd < 0) throw new Error("native TLS needs a connected socket with a descriptor");
    this.rawFd = fd;
  }

  /** Starts the handshake with `context`, giving OpenSSL `firstBytes`, already read from the socket, first. */
  start(context: NativeTlsContext, firstBytes: Buffer | undefined): void {
    // A paused net.Socket goes on reading into its own buffer, and would take the viewer's bytes,
    // and end the connection on the viewer's FIN, so its handle stops reading here.
    const handle = (this.raw as unknown as { _handle?: { reading?: boolean; readStop?: () => number } | null })._handle;
    if (handle?.readStop !== undefined) {
      handle.reading = false;
      handle.readStop();
    }
    this.raw.pause();
    this.raw.on("error", () => {});
    // What it read past the ClientHello before it stopped goes to OpenSSL too.
    const buffered: Buffer[] = [];
    for (let chunk = this.raw.read() as Buffer | null; chunk !== null; chunk = this.raw.read() as Buffer | null) buffered.push(chunk);
    const first = buffered.length === 0 ? firstBytes : Buffer.concat(firstBytes === undefined ? buffered : [firstBytes, ...buffered]);
    this.handle = addon!.adopt(context, this.rawFd, first, this);
    // The ClientHello was read already, so the socket will not signal it: the handshake starts here.
    addon!.pump(this.handle);
  }

  /** Receives the events of native/viewer-tls.c. */
  onNativeEvent(event: number, value: number): void {
    switch (event) {
      case EVENT_DATA: {
        this.bytesRead += value;
        if (this.onRead !== undefined) this.onRead(value, readBuffer!);
        else this.emit("data", Buffer.from(readBuffer!.subarray(0, value)));
        return;
      }
      case EVENT_DRAIN:
        this.drained();
        return;
      case EVENT_SECURE:
        this.alpnProtocol = false;
        if (value === ALPN_H2) this.alpnProtocol = "h2";
        if (value === ALPN_HTTP1) this.alpnProtocol = "http/1.1";
        if (this.handle !== undefined) this.details = addon!.details(this.handle);
        this.emit("secure");
        return;
      case EVENT_END:
        this.emit("end");
        if (!this.allowHalfOpen) this.end();
        return;
      case EVENT_CLOSE:
        this.closed(value !== CLOSE_NORMAL);
        return;
    }
  }

  /**
   * Makes reads arrive in `onRead` with the shared read buffer, which the next read of any
   * connection overwrites, instead of as "data" events. Returns true, as readIntoSharedBuffer does.
   */
  readInto(onRead: (bytes: number, buffer: Buffer) => void): boolean {
    this.onRead = onRead;
    return true;
  }

  /** The descriptor and the bytes waiting in this process, as a libuv handle shows them. */
  get _handle(): { fd: number; writeQueueSize: number } | null {
    return this.destroyed ? null : { fd: this.rawFd, writeQueueSize: this.writableLength };
  }

  get writableLength(): number {
    if (this.pendingKnown > 0 && this.handle !== undefined) this.pendingKnown = addon!.pendingBytes(this.handle);
    return this.corkedBytes + this.pendingKnown;
  }

  write(data: string | Uint8Array, encodingOrCallback?: BufferEncoding | ((error?: Error | null) => void), callback?: (error?: Error | null) => void): boolean {
    const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
    const encoding = typeof encodingOrCallback === "string" ? encodingOrCallback : "utf8";
    const buffer = typeof data === "string" ? Buffer.from(data, encoding) : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.destroyed || this.ended || this.handle === undefined) {
      if (done !== undefined) process.nextTick(done, new Error("write after end"));
      return false;
    }
    if (done !== undefined) this.flushWaiters.push(done);
    if (this.corked > 0) {
      this.corkedBuffers.push(buffer);
      this.corkedBytes += buffer.length;
      const below = this.corkedBytes + this.pendingKnown < HIGH_WATER_MARK;
      if (!below) this.needDrain = true;
      return below;
    }
    return this.send([buffer]);
  }

  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked === 0) return;
    this.corked--;
    if (this.corked > 0 || this.corkedBuffers.length === 0) return;
    const buffers = this.corkedBuffers;
    this.corkedBuffers = [];
    this.corkedBytes = 0;
    if (!this.destroyed && this.handle !== undefined) this.send(buffers);
  }

  /** Passes buffers to C; returns whether the bytes waiting in the process are below the high-water mark. */
  private send(buffers: Buffer[]): boolean {
    this.pendingKnown = addon!.write(this.handle!, buffers);
    if (this.destroyed) return false;
    if (this.pendingKnown === 0) {
      if (this.flushWaiters.length > 0 || this.needDrain) process.nextTick(() => this.drained());
      return true;
    }
    const below = this.pendingKnown < HIGH_WATER_MARK;
    if (!below) this.needDrain = true;
    // C reports the drain once it has sent the rest.
    return below;
  }

  private drained(): void {
    if (this.destroyed || this.corkedBytes > 0) return;
    if (this.pendingKnown > 0 && this.handle !== undefined) this.pendingKnown = addon!.pendingBytes(this.handle);
    if (this.pendingKnown > 0) return;
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const waiter of waiters) waiter(null);
    if (this.needDrain) {
      this.needDrain = false;
      this.emit("drain");
    }
  }

  pause(): this {
    if (this.handle !== undefined && !this.destroyed) addon!.pause(this.handle);
    return this;
  }

  resume(): this {
    if (this.handle === undefined || this.destroyed) return this;
    if (addon!.resume(this.handle) && !this.pumpScheduled) {
      // Bytes that OpenSSL read already are delivered outside the caller's stack.
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        if (this.handle !== undefined && !this.destroyed) addon!.pump(this.handle);
      });
    }
    return this;
  }

  setNoDelay(): this {
    // The descriptor has TCP_NODELAY from the start.
    return this;
  }

  end(data?: string | Uint8Array): this {
    if (data !== undefined) this.write(data);
    if (this.ended || this.destroyed) return this;
    this.ended = true;
    while (this.corked > 0) this.uncork();
    if (this.handle !== undefined) addon!.end(this.handle);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    if (this.handle !== undefined) addon!.destroy(this.handle);
    else this.closed(false);
    return this;
  }

  getProtocol(): string | null {
    return this.details?.[0] ?? null;
  }

  getCipher(): { name: string } | undefined {
    const cipher = this.details?.[1];
    return cipher === undefined || cipher === "" ? undefined : { name: cipher };
  }

  /** Runs once C has closed the connection, or when it never started. */
  private closed(hadError: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.handle = undefined;
    this.pendingKnown = 0;
    this.corkedBuffers = [];
    this.corkedBytes = 0;
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    this.raw.destroy();
    process.nextTick(() => {
      for (const waiter of waiters) waiter(new Error("connection closed"));
      this.emit("close", hadError);
    });
  }
}

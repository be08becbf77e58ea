import { STATUS_CODES } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { Logger } from "../../common/logger.js";
import type { ConnectionMover } from "../balance.js";
import type { ViewerRequest, ViewerResponse } from "../exchange.js";
import { normalizePath } from "../path.js";
import { ChunkedDecoder, LengthDecoder, RequestBody } from "./body.js";
import { HeadError, parseRequestHead, type Http1Limits, type ParsedHead } from "./parser.js";
import { readIntoSharedBuffer } from "./read-buffer.js";
import { kernelQueuedBytes } from "../native.js";
import { sendHeadAndSharedBody } from "../shared-body.js";
import { Http1Response, type ResponseSink } from "./response.js";

/** Handles one request; returns a promise only when the response is not done when it returns. */
export type RequestListener = (request: ViewerRequest, response: ViewerResponse) => Promise<void> | undefined;

export interface Http1Timeouts {
  /** How long a request head may take to arrive, from its first byte (or from connect). */
  headersTimeoutMs: number;
  /** How long a connection may stay idle between requests. */
  keepAliveTimeoutMs: number;
  /** How long a request body may go without receiving a byte. */
  bodyIdleTimeoutMs: number;
}

const EMPTY = Buffer.alloc(0);
/**
 * Largest response after which a plain connection closes without a half-close. Closing at once
 * saves a shutdown call and a wakeup per connection, which matters for small responses only.
 */
const CLOSE_AT_ONCE_MAX_BYTES = 64 * 1024;
/** Response bytes a connection may have waiting in its socket before it parses another pipelined request. */
const MAX_UNSENT_RESPONSE_BYTES = 1024 * 1024;
const NO_DEADLINE = Number.POSITIVE_INFINITY;
/** How long a draining edge waits for the first request of a connection that has sent nothing yet. */
const FIRST_REQUEST_GRACE_MS = 1_000;
/** The request line that opens the HTTP/2 connection preface (RFC 9113 section 3.4), which the parser rejects. */
const HTTP2_PREFACE_LINE = Buffer.from("PRI * HTTP/2.0\r\n", "latin1");

/** Takes over a plain connection that starts with the HTTP/2 preface, with the bytes read so far. */
export type Http2PrefaceHandler = (socket: Socket, received: Buffer) => void;

type Phase = "head" | "body" | "respond" | "closed";

/** A viewer request parsed by this server; its body stream is made only when read. */
class Http1Request implements ViewerRequest {
  private bodyStream: Readable | undefined;

  constructor(
    readonly startedAt: number,
    readonly receivedAtMs: number,
    readonly method: string,
    readonly target: string,
    readonly path: string,
    readonly rawQuery: string,
    readonly headers: IncomingHttpHeaders,
    readonly protocol: "http" | "https",
    readonly httpVersion: string,
    readonly clientIp: string,
    readonly socket: Socket,
    body: Readable | undefined,
    readonly headBytes: number,
  ) {
    this.bodyStream = body;
  }

  get body(): Readable {
    if (this.bodyStream === undefined) {
      const empty = new RequestBody(() => {});
      empty.push(null);
      this.bodyStream = empty;
    }
    return this.bodyStream;
  }
}

/** Splits an origin-form or absolute-form target (RFC 9112 section 3.2) into authority, path and query. */
function splitTarget(target: string): { authority: string | undefined; path: string; query: string } | undefined {
  let authority: string | undefined;
  let rest = target;
  if (target.charCodeAt(0) !== 0x2f) {
    const match = /^https?:\/\/([^/?]+)(.*)$/i.exec(target);
    if (match === null) return undefined;
    authority = match[1]!;
    rest = match[2] === "" ? "/" : match[2]!;
    if (rest.charCodeAt(0) === 0x3f) rest = `/${rest}`;
  }
  const queryStart = rest.indexOf("?");
  if (queryStart < 0) return { authority, path: rest, query: "" };
  return { authority, path: rest.slice(0, queryStart), query: rest.slice(queryStart + 1) };
}

interface HandleWithQueue {
  writeQueueSize?: number;
  fd?: number;
}

/**
 * Returns the bytes written to `socket` that the viewer has not acknowledged:
 * those still in the process, and, where the native part can tell, those in
 * the kernel's send queue. The kernel's queue can take megabytes, and a
 * plain socket's process-side count falls only when the queue has room
 * again, so the kernel's count is what shows that a slow viewer still reads.
 * A plain socket's handle counts down as the kernel takes part of a write.
 * The socket's own count drops only when a whole write has left.
 */
export function undeliveredBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: HandleWithQueue | null })._handle;
  const queued = handle?.writeQueueSize;
  const inProcess = typeof queued === "number" ? queued : socket.writableLength;
  const fd = handle?.fd;
  return inProcess + (typeof fd === "number" && fd >= 0 ? (kernelQueuedBytes(fd) ?? 0) : 0);
}

/**
 * One viewer connection: parses request heads strictly, hands each request
 * to the listener in order, and writes responses straight to the socket.
 * Pipelined requests wait in the buffer until the response before them is
 * done, and a batch of synchronous responses to pipelined requests leaves
 * in one corked write.
 */
export class Http1Connection implements ResponseSink {
  /** When the current phase times out, in epoch milliseconds. */
  deadlineMs: number;
  minorVersion: 0 | 1 = 1;
  private pending: Buffer = EMPTY;
  private phase: Phase = "head";
  private processing = false;
  private response: Http1Response | undefined;
  private body: RequestBody | undefined;
  private decoder: LengthDecoder | ChunkedDecoder | undefined;
  private requestKeepAlive = true;
  private draining = false;
  private paused = false;
  private headStarted = false;
  private drainWaiters: Array<(open: boolean) => void> = [];
  private readonly clientIp: string;
  /** Whether the viewer has half-closed its side: no request follows those already read. */
  private viewerDone = false;
  /** Whether the socket now belongs to the HTTP/2 server or another worker. */
  private handedOver = false;
  /** Whether the request in progress has a body, after which some clients send a stray CRLF. */
  private requestHasBody = false;
  /** Parsing stopped because responses were not sent yet; the socket's drain restarts it. */
  private resumeOnDrain = false;
  /** Whether reads arrive in the process's shared read buffer, which the next read overwrites. */
  private readonly sharedReads: boolean;
  /** `Date.now()` and `performance.now()` of the data event being processed, read once for all its requests. */
  private clockMs = 0;
  private clockPerformanceMs = 0;
  /** The bytes the viewer had not acknowledged at the last check, and when it last took any. */
  private undeliveredAtCheck = 0;
  private lastReadAtMs = 0;
  /** Whether the connection has ended its side and waits for the viewer to take what is left. */
  private lingering = false;
  /** The bytes the viewer had not acknowledged when the connection timed out. */
  private undeliveredAtTimeout = 0;

  constructor(
    private readonly socket: Socket,
    private readonly protocol: "http" | "https",
    private readonly listener: RequestListener,
    private readonly limits: Http1Limits,
    private readonly timeouts: Http1Timeouts,
    private readonly log: Logger,
    private readonly onClose: (connection: Http1Connection) => void,
    /** Set on the plain port only, where HTTP/2 may start without TLS (h2c). */
    private readonly onHttp2Preface: Http2PrefaceHandler | undefined,
    /** Set on the plain port of an edge worker: moves idle connections to other workers. */
    private readonly mover?: ConnectionMover,
  ) {
    this.deadlineMs = Date.now() + timeouts.headersTimeoutMs;
    this.clientIp = socket.remoteAddress ?? "";
    socket.setNoDelay(true);
    this.sharedReads = readIntoSharedBuffer(socket, (bytes, buffer) => this.onData(buffer.subarray(0, bytes)));
    if (!this.sharedReads) socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("error", () => {});
    socket.on("close", () => this.closed());
    // A viewer may half-close its side after its last request and still read the responses.
    // Over TLS the end is the viewer's close_notify or its TCP FIN.
    socket.allowHalfOpen = true;
    socket.on("end", () => this.viewerEnded());
  }

  /** Returns whether the viewer has half-closed and every byte it sent has been parsed. */
  private get lastRequestRead(): boolean {
    return this.viewerDone && this.pending.length === 0;
  }

  /** Whether no request is in progress, so closing loses nothing. */
  get idle(): boolean {
    return this.phase === "head" && this.pending.length === 0 && !this.headStarted;
  }

  /**
   * Asks the connection to close after the response in progress, or now when
   * idle. A connection that has not sent anything yet, such as one accepted
   * just before the drain, may have its first request on the way, so it gets
   * FIRST_REQUEST_GRACE_MS for it instead, and that response closes it.
   */
  drain(): void {
    this.draining = true;
    if (!this.idle) return;
    // clockMs is set by every data event, so 0 means no byte has arrived.
    if (this.clockMs === 0) {
      // Its own timer, because a drain that has ended no longer sweeps connections that arrive late.
      const timer = setTimeout(() => {
        if (this.idle) this.endConnection();
      }, FIRST_REQUEST_GRACE_MS);
      timer.unref();
      return;
    }
    this.endConnection();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Called by the server's sweep when `deadlineMs` has passed. */
  timedOut(): void {
    if (this.phase === "closed") {
      if (this.lingering) this.lingerTimedOut();
      return;
    }
    if (this.phase === "head" && !this.headStarted && this.pending.length === 0) {
      this.endConnection();
      return;
    }
    if ((this.phase === "head" || this.phase === "body") && this.response === undefined) {
      this.reject(408, "request timed out");
      return;
    }
    // A viewer that keeps taking a response's bytes, however slowly, is given more time.
    if (this.phase === "respond" && this.response !== undefined && this.viewerReadWithin(this.timeouts.bodyIdleTimeoutMs)) return;
    // A body that stopped arriving, or a viewer that stopped reading, while its response is under way.
    this.undeliveredAtTimeout = undeliveredBytes(this.socket);
    this.socket.destroy();
  }

  write(data: string | Buffer, onFlushed?: (error?: Error | null) => void): boolean {
    if (typeof data === "string") return this.socket.write(data, "latin1", onFlushed);
    return this.socket.write(data, onFlushed);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  unsentBytes(): number {
    return this.socket.writableLength;
  }

  get copiesWrites(): boolean {
    return this.protocol === "https";
  }

  waitForDrain(): Promise<boolean> {
    if (this.phase === "closed") return Promise.resolve(false);
    this.watchUnsent();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  sendShared(head: Buffer, bodyFd: number, bodyBytes: number): number {
    // Only a plain socket with nothing queued: the bytes must not overtake earlier writes.
    if (this.copiesWrites || this.socket.writableLength > 0) return -1;
    const handle = (this.socket as unknown as { _handle?: HandleWithQueue | null })._handle;
    if (handle === undefined || handle === null || handle.writeQueueSize !== 0) return -1;
    const fd = handle.fd;
    if (typeof fd !== "number" || fd < 0) return -1;
    return sendHeadAndSharedBody(fd, head, bodyFd, bodyBytes);
  }

  unsentWhenDestroyed(): number | undefined {
    return this.socket.destroyed ? this.undeliveredAtTimeout : undefined;
  }

  watchUnsent(): void {
    // A viewer that stops reading a response is dropped after the body idle timeout.
    if (this.phase === "respond") this.startReadWatch(this.timeouts.bodyIdleTimeoutMs);
  }

  /**
   * Starts watching the bytes the viewer has not acknowledged. The sweep
   * checks them four times per `idleMs`, so a viewer is dropped between
   * `idleMs` and a quarter more after it last took a byte.
   */
  private startReadWatch(idleMs: number): void {
    const nowMs = Date.now();
    this.lastReadAtMs = nowMs;
    this.undeliveredAtCheck = undeliveredBytes(this.socket);
    this.deadlineMs = nowMs + idleMs / 4;
  }

  /**
   * Returns whether the viewer took bytes in the last `idleMs`, and if so
   * sets the next check. New writes raise the count, so only a fall counts.
   */
  private viewerReadWithin(idleMs: number): boolean {
    const nowMs = Date.now();
    const undelivered = undeliveredBytes(this.socket);
    if (undelivered < this.undeliveredAtCheck) this.lastReadAtMs = nowMs;
    this.undeliveredAtCheck = undelivered;
    if (nowMs - this.lastReadAtMs >= idleMs) return false;
    this.deadlineMs = Math.min(nowMs + idleMs / 4, this.lastReadAtMs + idleMs);
    return true;
  }

  /**
   * Checks, for the sweep, a connection that has ended its side. A viewer
   * that still takes the last response's bytes keeps the socket until it has
   * them all. One that stopped reading for the body idle timeout is dropped,
   * and so is one that has everything but does not end its side within the
   * keep-alive timeout.
   */
  private lingerTimedOut(): void {
    if (this.socket.destroyed) return;
    const idleMs = undeliveredBytes(this.socket) > 0 ? this.timeouts.bodyIdleTimeoutMs : this.timeouts.keepAliveTimeoutMs;
    if (this.viewerReadWithin(idleMs)) return;
    this.lingering = false;
    this.deadlineMs = NO_DEADLINE;
    this.socket.destroy();
  }

  keepAlive(): boolean {
    // A body the handler did not read would be taken for the next request.
    return this.requestKeepAlive && !this.draining && this.phase !== "body" && !this.lastRequestRead;
  }

  finished(response: Http1Response, complete: boolean): void {
    if (response !== this.response) return;
    this.response = undefined;
    if (!complete || response.closeAfter || this.lastRequestRead) {
      if (complete && this.closesAtOnce(response.bytesSent)) this.closeAtOnce();
      else this.endConnection();
      return;
    }
    if (this.phase === "respond") {
      this.phase = "head";
      this.headStarted = false;
      this.deadlineMs = (this.processing ? this.clockMs : Date.now()) + this.timeouts.keepAliveTimeoutMs;
    }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    // A response that completed later than its request leaves pipelined bytes to parse.
    if (!this.processing && this.pending.length > 0) this.process();
    if (this.viewerDone && !this.processing) this.closeCutShort();
    // Checked after the requests read so far are done, before the next read.
    if (this.mover?.wantsToMove() === true) queueMicrotask(() => this.moveIfIdle());
  }

  /**
   * Moves the connection to another worker when nothing of it is held in this process: no
   * request in progress, no byte read and not parsed, and no response byte waiting to be
   * written. The viewer's next request, if it is already on the way, waits in the kernel.
   */
  private moveIfIdle(): void {
    const idle = this.idle && !this.processing && this.response === undefined && this.phase === "head";
    if (!idle || this.draining || this.viewerDone || this.socket.writableLength > 0 || this.socket.readableLength > 0) return;
    if (this.mover === undefined || !this.mover.wantsToMove()) return;
    // The socket's close, once it is detached, removes the connection from its set.
    this.handedOver = true;
    if (!this.mover.move(this.socket)) this.handedOver = false;
  }

  private onData(chunk: Buffer): void {
    if (this.phase === "closed") return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.clockMs = Date.now();
    this.clockPerformanceMs = performance.now();
    if (this.phase === "body") this.deadlineMs = this.clockMs + this.timeouts.bodyIdleTimeoutMs;
    this.process();
    // Bytes left for later must not stay in the shared read buffer.
    if (this.sharedReads && this.pending.length > 0 && this.pending.buffer === chunk.buffer) this.pending = Buffer.from(this.pending);
  }

  private process(): void {
    if (!this.processing && this.clockMs === 0) {
      // Called for pipelined bytes after a late response, outside a data event.
      this.clockMs = Date.now();
      this.clockPerformanceMs = performance.now();
    }
    this.processing = true;
    // Corked only when pipelined bytes follow a head, so a lone request's response goes straight out.
    let corked = false;
    try {
      while (this.phase !== "closed") {
        if (this.phase === "body") {
          if (!this.feedBody()) break;
          continue;
        }
        if (this.phase === "respond") {
          // Bytes past the head wait for the response; a client far ahead is paused.
          if (this.pending.length > this.limits.maxHeadBytes && !this.paused) {
            this.paused = true;
            this.socket.pause();
          }
          break;
        }
        if (this.pending.length === 0) break;
        if (this.socket.writableLength > MAX_UNSENT_RESPONSE_BYTES) {
          // A viewer that pipelines requests without reading the responses waits here, so unsent bytes stay bounded.
          this.resumeOnDrain = true;
          if (!this.paused) {
            this.paused = true;
            this.socket.pause();
          }
          break;
        }
        if (!this.headStarted) {
          this.headStarted = true;
          this.deadlineMs = this.clockMs + this.timeouts.headersTimeoutMs;
        }
        let head: ParsedHead | "incomplete";
        try {
          head = parseRequestHead(this.pending, 0, this.limits);
        } catch (error) {
          if (!(error instanceof HeadError)) throw error;
          if (this.startsWithHttp2Preface()) {
            this.handOverToHttp2();
            break;
          }
          this.reject(error.status, error.message);
          break;
        }
        if (head === "incomplete") break;
        this.pending = this.pending.length === head.headBytes ? EMPTY : this.pending.subarray(head.headBytes);
        if (!corked && this.pending.length > 0) {
          corked = true;
          this.socket.cork();
        }
        this.dispatch(head);
      }
    } finally {
      if (corked) this.socket.uncork();
      this.processing = false;
      this.clockMs = 0;
    }
  }

  private dispatch(head: ParsedHead): void {
    const parts = splitTarget(head.target);
    if (parts === undefined) {
      this.reject(400, "invalid request-target");
      return;
    }
    const normalized = normalizePath(parts.path);
    if (!normalized.ok) {
      this.reject(400, normalized.reason);
      return;
    }
    // RFC 9112 section 3.2.2: the authority of an absolute-form target replaces Host.
    if (parts.authority !== undefined) head.headers.host = parts.authority;
    const path = normalized.path;
    const target = parts.query === "" ? path : `${path}?${parts.query}`;

    this.minorVersion = head.minorVersion;
    this.requestKeepAlive = head.keepAlive;
    this.headStarted = false;
    let body: RequestBody | undefined;
    this.requestHasBody = head.framing.kind !== "none";
    if (head.framing.kind === "none") {
      this.phase = "respond";
      this.deadlineMs = NO_DEADLINE;
    } else {
      body = new RequestBody(() => this.resumeForBody());
      this.body = body;
      this.decoder = head.framing.kind === "length" ? new LengthDecoder(head.framing.bytes) : new ChunkedDecoder();
      this.phase = "body";
      this.deadlineMs = this.clockMs + this.timeouts.bodyIdleTimeoutMs;
      if (head.expectContinue) this.socket.write("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
    }

    const request = new Http1Request(
      this.clockPerformanceMs,
      this.clockMs,
      head.method,
      target,
      path,
      parts.query,
      head.headers,
      this.protocol,
      head.minorVersion === 1 ? "HTTP/1.1" : "HTTP/1.0",
      this.clientIp,
      this.socket,
      body,
      head.headBytes,
    );
    const response = new Http1Response(this);
    this.response = response;
    let pending: Promise<void> | undefined;
    try {
      pending = this.listener(request, response);
    } catch (error) {
      this.listenerFailed(error);
      return;
    }
    pending?.catch((error: unknown) => this.listenerFailed(error));
  }

  private listenerFailed(error: unknown): void {
    this.log.error({ err: error }, "edge request listener failed");
    this.socket.destroy();
  }

  /** Moves body bytes from the buffer into the body stream; returns whether the body is complete. */
  private feedBody(): boolean {
    const body = this.body!;
    const decoder = this.decoder!;
    let used: number;
    try {
      used = decoder.feed(this.pending, (data) => {
        // The body stream keeps its chunks until they are read.
        if (!body.push(this.sharedReads ? Buffer.from(data) : data) && !this.paused) {
          this.paused = true;
          this.socket.pause();
        }
      });
    } catch (error) {
      if (!(error instanceof HeadError)) throw error;
      body.destroy(error);
      this.reject(error.status, error.message);
      return false;
    }
    this.pending = used === this.pending.length ? EMPTY : this.pending.subarray(used);
    if (!decoder.done) return false;

    body.push(null);
    this.body = undefined;
    this.decoder = undefined;
    if (this.response !== undefined) {
      this.phase = "respond";
      this.deadlineMs = NO_DEADLINE;
      return true;
    }
    // The response went out before the body ended, so it announced the connection's close.
    this.endConnection();
    return false;
  }

  private resumeForBody(): void {
    if (this.paused && this.phase === "body") {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Returns whether a rejected head is the HTTP/2 connection preface at the
   * start of a plain connection (h2c with prior knowledge, RFC 9113 section
   * 3.3). It runs only for rejected heads, so other requests pay nothing for
   * it. While the pending bytes are all the socket has read, no request came before.
   */
  private startsWithHttp2Preface(): boolean {
    return (
      this.onHttp2Preface !== undefined &&
      !this.draining &&
      this.socket.bytesRead === this.pending.length &&
      this.pending.subarray(0, HTTP2_PREFACE_LINE.length).equals(HTTP2_PREFACE_LINE)
    );
  }

  /** Leaves the connection set and hands the socket, with the bytes read so far, to the HTTP/2 server. */
  private handOverToHttp2(): void {
    // The next read overwrites the shared read buffer, so the bytes are copied.
    const received = Buffer.from(this.pending);
    this.handedOver = true;
    // The HTTP/2 server closes the connection on the viewer's FIN, as a socket does by default.
    this.socket.allowHalfOpen = false;
    this.phase = "closed";
    this.pending = EMPTY;
    this.deadlineMs = NO_DEADLINE;
    // This connection's socket listeners stay, and do nothing once the phase is closed.
    this.onClose(this);
    this.onHttp2Preface!(this.socket, received);
  }

  /** Sends an error status generated by the connection itself, then closes it. */
  private reject(status: number, reason: string): void {
    if (this.response !== undefined && this.response.bytesSent > 0) {
      this.socket.destroy();
      return;
    }
    const body = `${STATUS_CODES[status] ?? "Error"}: ${reason}\n`;
    this.socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      "latin1",
    );
    this.endConnection();
    // The handler may still hold the response; it now writes nothing.
    this.response?.abort();
  }

  /**
   * Returns whether the connection may close without a half-close first. That needs the plain
   * port (TLS ends with close_notify), a request without a body and with no bytes after it, and
   * a response of at most CLOSE_AT_ONCE_MAX_BYTES, all of it written to the kernel. A byte that
   * arrives after the close makes the kernel reset the connection and drop what it has not sent
   * yet. Larger responses may still wait in the send queue, and some clients send a CRLF after a
   * request body, so those connections keep the half-close of RFC 9112 section 9.6.
   */
  private closesAtOnce(responseBytes: number): boolean {
    return (
      this.protocol === "http" &&
      this.phase === "respond" &&
      !this.requestHasBody &&
      responseBytes <= CLOSE_AT_ONCE_MAX_BYTES &&
      this.pending.length === 0 &&
      this.socket.writableLength === 0
    );
  }

  /** Closes the socket without a shutdown call or a wait for the client's FIN. The kernel still sends the response, then a FIN. */
  private closeAtOnce(): void {
    this.phase = "closed";
    this.pending = EMPTY;
    this.deadlineMs = NO_DEADLINE;
    this.socket.destroy();
  }

  private endConnection(): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.pending = EMPTY;
    this.deadlineMs = NO_DEADLINE;
    this.socket.end();
    // A viewer that never reads the last response must not hold the socket open.
    this.lingering = true;
    this.startReadWatch(this.timeouts.keepAliveTimeoutMs);
  }

  /**
   * Handles the end of the viewer's side. Requests already read are still served, and the last
   * response closes the connection. A request head or body cut short by the end can never
   * complete, so the connection closes at once.
   */
  private viewerEnded(): void {
    if (this.handedOver) return;
    this.viewerDone = true;
    // A response in progress closes the connection, or serves the next request, when it ends.
    if (this.phase !== "respond") this.closeCutShort();
  }

  /**
   * Closes the connection of a viewer that has half-closed, unless a response is in progress or
   * complete requests wait for the viewer to read earlier responses. Anything else left is a
   * request head or body that can never complete. A connection already closing finishes its
   * writes first.
   */
  private closeCutShort(): void {
    if (this.phase === "head" && !this.resumeOnDrain) this.endConnection();
    else if (this.phase === "body") this.socket.destroy();
  }

  private onDrain(): void {
    this.releaseDrainWaiters(true);
    if (!this.resumeOnDrain) return;
    this.resumeOnDrain = false;
    if (this.paused && this.phase === "head") {
      this.paused = false;
      this.socket.resume();
    }
    if (!this.processing && this.pending.length > 0) this.process();
    if (this.viewerDone && !this.processing) this.closeCutShort();
  }

  private releaseDrainWaiters(open: boolean): void {
    if (this.phase === "respond") this.deadlineMs = NO_DEADLINE;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve(open);
  }

  private closed(): void {
    this.phase = "closed";
    this.deadlineMs = NO_DEADLINE;
    this.releaseDrainWaiters(false);
    this.body?.destroy();
    this.response?.abort();
    this.onClose(this);
  }
}

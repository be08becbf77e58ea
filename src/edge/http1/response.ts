import { STATUS_CODES } from "node:http";
import type { Readable } from "node:stream";
import type { CachedResponse } from "../../cache/entry.js";
import type { ViewerResponse } from "../exchange.js";
import { currentHttpDate } from "../headers.js";
import type { PreparedHit } from "../hit-head.js";
import { giveBackToSlab, takeFromSlab } from "../output-slab.js";
import { sharedBodyFd } from "../shared-body.js";

/** The connection side that a response writes to. */
export interface ResponseSink {
  /**
   * The socket to write to, corked by the caller around a batch of writes.
   * `onFlushed` is called once the socket has handed `data` to the kernel, or
   * with an error when it could not.
   */
  write(data: string | Buffer, onFlushed?: (error?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
  /** Resolves when the socket can take more data, or false when it closed. */
  waitForDrain(): Promise<boolean>;
  /** Bytes written to the socket that it has not handed to the kernel yet. */
  unsentBytes(): number;
  /**
   * Whether the socket copies what it is given before sending it, as TLS does
   * when it encrypts. A plain socket sends from the caller's buffer.
   */
  readonly copiesWrites: boolean;
  /** Times the viewer out when it stops taking the bytes written to the socket. */
  watchUnsent(): void;
  /**
   * Undefined while the socket is open. Once it is destroyed: the bytes the
   * viewer had not acknowledged when it was timed out, or 0 when unknown.
   */
  unsentWhenDestroyed(): number | undefined;
  /**
   * Sends `head` and a shared body straight to a plain socket with nothing
   * queued before them. Returns how many of their bytes the kernel took, or
   * -1 when the socket cannot send this way and took none.
   */
  sendShared(head: Buffer, bodyFd: number, bodyBytes: number): number;
  readonly minorVersion: 0 | 1;
  /** Whether the connection is to stay open after this response; read when the head is written. */
  keepAlive(): boolean;
  /** Called once when the response has been handed to the socket whole, or could not be. */
  finished(response: Http1Response, complete: boolean): void;
}

const STATUS_LINES = new Map<number, string>();

function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
    if (STATUS_LINES.size < 200) STATUS_LINES.set(status, line);
  }
  return line;
}

let lineDate = "";
let dateLine = "";

/** Returns the `Date` header line (RFC 9110 section 6.6.1), built again only when the date changes. */
function currentDateLine(): string {
  const date = currentHttpDate();
  if (date !== lineDate) {
    lineDate = date;
    dateLine = `date: ${date}\r\n`;
  }
  return dateLine;
}

/** Serialises a flat `[name, value, ...]` list; values were validated where they came from. */
function headerLines(headers: readonly string[]): { text: string; hasDate: boolean } {
  let text = "";
  let hasDate = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name === "date") hasDate = true;
    text += `${name}: ${headers[i + 1]!}\r\n`;
  }
  return { text, hasDate };
}

function hasHeader(headers: readonly string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return true;
  return false;
}

/**
 * Over TLS, bodies larger than this are written in slices of this size, each once the socket took
 * the one before, since the socket copies what it encrypts. It must exceed the socket's high-water
 * mark (16 KiB), so that a slice left unsent always makes the socket emit 'drain'.
 */
const BODY_SLICE_BYTES = 256 * 1024;
/**
 * Bodies up to this size are copied behind a prepared head and written as one buffer; larger ones
 * go out with the head in one writev. Measured on one 2-core machine, the copy saved about 1 us
 * of CPU per 1 KiB hit and cost about 4 us per 10 KiB hit (`bench/edge/hit-path.sh` and wrk).
 */
const COPY_BODY_MAX_BYTES = 2 * 1024;
const EMPTY = Buffer.alloc(0);
const END_TAIL = Buffer.from("\r\n\r\n", "latin1");
const KEEP_ALIVE_TAIL = Buffer.from("\r\nconnection: keep-alive\r\n\r\n", "latin1");
const CLOSE_TAIL = Buffer.from("\r\nconnection: close\r\n\r\n", "latin1");

/** Stores an ASCII string's bytes at `offset`; returns the offset after them. */
function writeAscii(target: Buffer, offset: number, text: string): number {
  for (let i = 0; i < text.length; i++) target[offset + i] = text.charCodeAt(i);
  return offset + text.length;
}

/** One response on an HTTP/1.1 connection, written straight to the socket. */
export class Http1Response implements ViewerResponse {
  bytesSent = 0;
  done = false;
  /** Whether the connection closes after this response, decided when the head is written. */
  closeAfter = false;
  private doneListener: ((bytesSent: number) => void) | undefined;
  /** Whether the last slice of a large body has left the socket, and whether finishing waits for that. */
  private lastSliceFlushed = false;
  private finishOnFlush = false;

  constructor(private readonly sink: ResponseSink) {}

  private head(status: number, headers: readonly string[], chunked: boolean, mustClose = false): string {
    const { text, hasDate } = headerLines(headers);
    let head = statusLine(status) + text;
    if (!hasDate) head += currentDateLine();
    if (chunked) head += "transfer-encoding: chunked\r\n";
    this.closeAfter = mustClose || !this.sink.keepAlive();
    if (this.closeAfter) head += "connection: close\r\n";
    else if (this.sink.minorVersion === 0) head += "connection: keep-alive\r\n";
    return head + "\r\n";
  }

  send(status: number, headers: readonly string[], body: Buffer | undefined): void {
    if (this.done) return;
    const head = this.head(status, headers, false);
    this.sendHeadAndBody(head, body !== undefined && body.length > 0 ? body : undefined);
  }

  sendHit(prepared: PreparedHit, _entry: CachedResponse, requestId: string, body: Buffer | undefined): void {
    if (this.done) return;
    this.closeAfter = !this.sink.keepAlive();
    let tail = END_TAIL;
    if (this.closeAfter) tail = CLOSE_TAIL;
    else if (this.sink.minorVersion === 0) tail = KEEP_ALIVE_TAIL;
    const head = prepared.http1Head;
    const headBytes = head.length + requestId.length + tail.length;
    const bodyBytes = body === undefined ? 0 : body.length;
    const sink = this.sink;
    if (bodyBytes <= COPY_BODY_MAX_BYTES) {
      // One buffer, one write: for small bodies a copy costs less than a writev.
      // TypedArray.set and byte stores here cost less than Buffer.copy and Buffer.write calls.
      const out = takeFromSlab(headBytes + bodyBytes);
      out.set(head, 0);
      const offset = writeAscii(out, head.length, requestId);
      out.set(tail, offset);
      if (body !== undefined) out.set(body, offset + tail.length);
      sink.write(out);
      // Nothing left unsent means the write completed and released `out`.
      if (sink.unsentBytes() === 0) giveBackToSlab(out);
      this.bytesSent += headBytes + bodyBytes;
      this.finish(true);
      return;
    }
    const start = takeFromSlab(headBytes);
    start.set(head, 0);
    start.set(tail, writeAscii(start, head.length, requestId));
    const bodyFd = sharedBodyFd(body!);
    const sentDirect = bodyFd === undefined ? -1 : sink.sendShared(start, bodyFd, bodyBytes);
    if (sentDirect < 0) this.sendHeadAndBody(start, body);
    else this.sendRest(start, body!, sentDirect);
    if (sink.unsentBytes() === 0) giveBackToSlab(start);
  }

  /** Writes what the kernel did not take of a head and body sent straight to the socket. */
  private sendRest(head: Buffer, body: Buffer, sentDirect: number): void {
    this.bytesSent += sentDirect;
    if (sentDirect < head.length) {
      this.sendHeadAndBody(head.subarray(sentDirect), body);
      return;
    }
    const bodySent = sentDirect - head.length;
    if (bodySent === body.length) this.finish(true);
    else this.sendHeadAndBody(EMPTY, body.subarray(bodySent));
  }

  /**
   * Writes a head and a body held in memory. A plain socket takes a large
   * body whole, since it sends from the body's own memory. Over TLS the body
   * leaves in slices, and a slice waits until the socket has handed the
   * previous one to the kernel, so a viewer that reads slowly keeps at most
   * one encrypted slice waiting. Either way, a large response ends only once its
   * last byte has left the socket: a queued write of an evicted entry keeps
   * the whole entry alive, and the cache counts it against its budget until
   * then.
   */
  private sendHeadAndBody(head: string | Buffer, body: Buffer | undefined): void {
    const sink = this.sink;
    this.bytesSent += head.length;
    if (body === undefined || body.length <= BODY_SLICE_BYTES) {
      sink.cork();
      if (head.length > 0) sink.write(head);
      if (body !== undefined) sink.write(body);
      sink.uncork();
      this.bytesSent += body?.length ?? 0;
      this.finish(true);
      return;
    }
    if (!sink.copiesWrites) {
      // Measured with wrk on 1 MiB hits over 64 connections of a 2-core machine: 12 to 20%
      // more requests a second than 256 KiB slices, each written once the one before left.
      sink.cork();
      if (head.length > 0) sink.write(head);
      sink.write(body, this.onLastSliceFlushed);
      sink.uncork();
      this.bytesSent += body.length;
      this.finishWhenSent();
      return;
    }
    sink.cork();
    if (head.length > 0) sink.write(head);
    const offset = this.writeSlices(body, 0);
    sink.uncork();
    if (offset === body.length) {
      this.finishWhenSent();
      return;
    }
    void this.writeRestAfterDrain(body, offset);
  }

  /**
   * Finishes a response from a large body once the socket has handed its
   * last slice to the kernel. A slice waiting in the socket references the
   * whole body, so the response holds the body until then, and the cache
   * counts an evicted body against its budget for as long.
   */
  private finishWhenSent(): void {
    if (this.lastSliceFlushed || this.sink.unsentBytes() === 0) {
      this.finish(true);
      return;
    }
    this.finishOnFlush = true;
    this.sink.watchUnsent();
  }

  /** The write callback of a body's last slice. */
  private readonly onLastSliceFlushed = (error?: Error | null): void => {
    this.lastSliceFlushed = true;
    // A socket destroyed with the write pending reports the write without an error.
    const unsent = this.sink.unsentWhenDestroyed();
    if (unsent !== undefined) this.bytesSent -= unsent;
    if (this.finishOnFlush) this.finish(unsent === undefined && (error === undefined || error === null));
  };

  /** Writes slices from `offset` while the socket takes them at once; returns the offset reached. */
  private writeSlices(body: Buffer, start: number): number {
    let offset = start;
    while (offset < body.length) {
      const end = Math.min(body.length, offset + BODY_SLICE_BYTES);
      this.sink.write(body.subarray(offset, end), end === body.length ? this.onLastSliceFlushed : undefined);
      this.bytesSent += end - offset;
      offset = end;
      if (this.sink.unsentBytes() > 0) break;
    }
    return offset;
  }

  private async writeRestAfterDrain(body: Buffer, start: number): Promise<void> {
    let offset = start;
    while (offset < body.length) {
      if (this.done || !(await this.sink.waitForDrain())) {
        this.finish(false);
        return;
      }
      offset = this.writeSlices(body, offset);
    }
    this.finishWhenSent();
  }

  async stream(status: number, headers: readonly string[], body: Readable): Promise<void> {
    if (this.done) {
      body.destroy();
      return;
    }
    // Without a declared length, HTTP/1.1 frames the body with chunks and HTTP/1.0 by closing.
    const declared = hasHeader(headers, "content-length");
    const chunked = !declared && this.sink.minorVersion === 1;
    const head = this.head(status, headers, chunked, !declared && !chunked);
    this.sink.write(head);
    this.bytesSent += head.length;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (chunk.length === 0) continue;
        let writable: boolean;
        if (chunked) {
          const size = `${chunk.length.toString(16)}\r\n`;
          this.sink.cork();
          this.sink.write(size);
          this.sink.write(chunk);
          writable = this.sink.write("\r\n");
          this.sink.uncork();
          this.bytesSent += size.length + chunk.length + 2;
        } else {
          writable = this.sink.write(chunk);
          this.bytesSent += chunk.length;
        }
        if (!writable && !(await this.sink.waitForDrain())) {
          body.destroy();
          this.finish(false);
          return;
        }
      }
    } catch {
      // The origin broke off: the viewer cannot get a complete response on this connection.
      this.closeAfter = true;
      this.finish(false);
      return;
    }
    if (chunked) {
      this.sink.write("0\r\n\r\n");
      this.bytesSent += 5;
    }
    this.finish(true);
  }

  onDone(listener: (bytesSent: number) => void): void {
    this.doneListener = listener;
    if (this.done) listener(this.bytesSent);
  }

  /** Ends the response without writing, when the connection closed first. */
  abort(): void {
    if (!this.done) this.finish(false);
  }

  private finish(complete: boolean): void {
    if (this.done) return;
    this.done = true;
    if (!complete) this.closeAfter = true;
    this.sink.finished(this, complete);
    this.doneListener?.(this.bytesSent);
  }
}
